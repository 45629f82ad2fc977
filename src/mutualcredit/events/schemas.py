"""The event a client reads from the feed (and, in part B, receives at a webhook)."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from mutualcredit.schemas import OutputModel


class Event(OutputModel):
    id: str = Field(
        description="Stable and unique in the deployment: evt_<network>_<seq>. A delivery of the"
        " same event always carries the same id.",
        examples=["evt_coop_42"],
    )
    seq: int = Field(
        description="The cursor: increases in commit order within the network (with gaps where"
        " a change is not an event). Read on with `after=<seq>`."
    )
    type: str = Field(examples=["trade.posted"])
    version: int = Field(description="The version of the payload's shape for this type.")
    occurred_at: datetime
    network: str
    accounts: list[str] = Field(description="The codes of the accounts the event is about.")
    data: dict[str, Any] = Field(description="The payload (see the document's `webhooks`).")


# The payloads, version 1. The feed's `data` and a webhook's body carry exactly these shapes;
# a change that is not a pure addition makes a new version of the type.


class TradeData(OutputModel):
    """A trade as it was at the event (a hold read after it posted still shows it pending)."""

    id: uuid.UUID
    key: str = Field(description="The Idempotency-Key the trade was created with.")
    kind: str = Field(examples=["transfer", "reversal", "request", "federation", "fee"])
    status: str = Field(examples=["pending", "posted", "voided", "expired"])
    payer: str
    payee: str
    amount: int = Field(description="Minor units.")
    posted_amount: int | None = Field(description="What was booked, once posted.")
    description: str
    external_ref: str | None
    metadata: dict[str, Any]
    reverses_trade_id: uuid.UUID | None
    reason: str | None = Field(description="An operator's reason (reversals, write-offs).")
    created_by: str
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None


class TradeEventData(OutputModel):
    trade: TradeData
    balances_after: dict[str, int] | None = Field(
        default=None,
        description="trade.posted and trade.reversed only: each party's balance just after the"
        " trade, by account code (a member's view: its own account's only).",
    )


class FeeData(OutputModel):
    """The charge a fee trade books: which rule, and what caused it."""

    rule: str = Field(description="The fee rule's code.")
    kind: str = Field(examples=["levy", "membership", "demurrage"])
    cause_trade_id: uuid.UUID | None = Field(description="A levy: the trade it was charged on.")
    due_at: datetime | None = Field(
        description="A membership fee or demurrage: the period boundary it was charged for."
    )
    waived: int = Field(description="What the account could not pay of a periodic charge.")
    past_limit: bool = Field(description="Booked past a limit (the rule's over_limit book).")


class FeeEventData(OutputModel):
    trade: TradeData = Field(description="The fee trade: from the account charged to the treasury.")
    balances_after: dict[str, int] | None = Field(
        default=None,
        description="Each party's balance just after the charge, by account code (a member's"
        " view: its own account's only).",
    )
    fee: FeeData


class RequestData(OutputModel):
    id: uuid.UUID
    payer: str
    payee: str
    amount: int
    description: str
    status: str = Field(examples=["open", "accepted", "rejected", "cancelled", "expired"])
    reason: str | None
    trade_id: uuid.UUID | None = Field(description="The trade that paid it, once accepted.")
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None


class RequestEventData(OutputModel):
    request: RequestData


class AccountEventData(OutputModel):
    account: str = Field(description="The account's code.")
    before: dict[str, Any] | None = Field(description="The fields that changed, before.")
    after: dict[str, Any] = Field(
        description="The fields that changed, after (status, credit_limit, balance_max, ...)."
    )


class TransferData(OutputModel):
    transfer_id: uuid.UUID
    direction: str = Field(description="out: sent from here; in: received here.")
    kind: str = Field(examples=["federation", "settlement"])
    status: str = Field(examples=["accepted", "refused"])
    trade_id: uuid.UUID | None = Field(description="This network's trade of the transfer.")
    payer_address: str
    payee_address: str
    amount_sent: int = Field(description="Minor units of the sending network.")
    amount_received: int = Field(description="Minor units of the receiving network.")
    rate_num: int
    rate_den: int
    reference: str | None
    refusal_code: str | None
    resolved_at: datetime | None


class TransferEventData(OutputModel):
    transfer: TransferData


class SettlementData(OutputModel):
    id: uuid.UUID
    link_account: str = Field(description="The code of the link's account in this network.")
    reference: str
    amount: int
    status: str
    transfer_id: uuid.UUID | None
    created_at: datetime


class SettlementEventData(OutputModel):
    settlement: SettlementData


class WebhookData(OutputModel):
    id: uuid.UUID = Field(description="The endpoint's id.")
    url: str = Field(description="Its URL now.")
    description: str
    account: str | None = Field(description="The account whose events it receives (all: null).")
    member_account: str | None = Field(
        description="The member account whose endpoint it is (an operator's: null)."
    )
    status: str = Field(examples=["disabled"])
    status_reason: str | None = Field(
        description="Why: `disabled by an operator`, `disabled by its member`, or `no"
        " successful delivery since …` (failing for MUTUALCREDIT_WEBHOOK_DISABLE_AFTER_DAYS)."
    )
    changed_by: str = Field(description="Who disabled it: an operator's key, or the service.")


class WebhookEventData(OutputModel):
    webhook: WebhookData


class TradeEvent(Event):
    data: TradeEventData  # type: ignore[assignment]


class FeeEvent(Event):
    data: FeeEventData  # type: ignore[assignment]


class RequestEvent(Event):
    data: RequestEventData  # type: ignore[assignment]


class AccountEvent(Event):
    data: AccountEventData  # type: ignore[assignment]


class TransferEvent(Event):
    data: TransferEventData  # type: ignore[assignment]


class SettlementEvent(Event):
    data: SettlementEventData  # type: ignore[assignment]


class WebhookEvent(Event):
    data: WebhookEventData  # type: ignore[assignment]
