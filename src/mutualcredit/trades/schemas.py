import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, field_validator

from mutualcredit.accounts.schemas import AccountCode
from mutualcredit.schemas import Amount, Flag, InputModel, Moment, OutputModel
from mutualcredit.trades.models import TradeKind, TradeStatus

Description = Annotated[str, Field(max_length=500)]
ExternalRef = Annotated[str, Field(min_length=1, max_length=200)]

MAX_METADATA_BYTES = 4096

Payee = Annotated[
    str,
    Field(
        pattern=r"^(?:[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?/)?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Code of the receiving account; in another network, its address "
        "`network/account` (a cross-network trade, see Federation).",
    ),
]


class TradeCreate(InputModel):
    payer: AccountCode = Field(description="Code of the paying account (a member's own).")
    payee: Payee
    amount: Amount
    description: Description = ""
    external_ref: ExternalRef | None = Field(
        default=None, description="Your reference: an invoice or till receipt number."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free JSON object, at most 4 KiB."
    )
    pending: Flag = Field(
        default=False,
        description="Hold the amount now and post or void it later (two-phase), "
        "instead of booking it at once.",
    )
    expires_at: Moment | None = Field(
        default=None,
        description="When a pending trade expires if not posted or voided. Default: 24 hours "
        "(configurable). Only for pending trades.",
    )

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:
            # Integers beyond 64 bits, or nesting deeper than the encoder goes (found by the
            # fuzzer): a ValueError makes it a validation error instead of a crash.
            raise ValueError(
                "metadata must be plain JSON: integers within 64 bits, nesting under 250 levels"
            ) from None
        if len(encoded) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must encode to at most {MAX_METADATA_BYTES} bytes")
        return value


class TradePost(InputModel):
    amount: Amount | None = Field(
        default=None, description="Post only part of the hold; omit to post all of it."
    )


class TradeVoid(InputModel):
    pass


class TradeReverse(InputModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="Why: kept on the reversal and in the audit log."
    )
    override_limits: Flag = Field(
        default=False,
        description="Book the reversal even if it takes an account beyond a limit. Recorded.",
    )


class RateView(OutputModel):
    num: int
    den: int
    version: int


# A cross-network trade's hop to or from a peer network, as the trade shows it. Declared here,
# with the trade it belongs to, so that the ledger depends on nothing above it: federation fills
# it in (trades/cross_network.py) and shows the same view of a link's transfers. (No docstring:
# it would become the schema's description in the OpenAPI document.)
class TransferView(OutputModel):
    transfer_id: uuid.UUID
    direction: str
    peer: str
    kind: str
    status: str = Field(
        description="in_flight, accepted or refused; resolved: an operator posted or voided its "
        "hold past its expiry (resolution), waiting for the peer's word; disputed: the peer's "
        "word contradicts the resolution (its receipt is kept, no value moved)."
    )
    payer: str
    payee: str
    amount_sent: int
    amount_received: int
    rate: RateView
    expires_at: datetime
    refusal_code: str | None
    refusal_detail: dict[str, Any] | None
    seq: int | None
    attempts: int
    last_error: str | None
    reference: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None = Field(
        default=None, description="An operator's resolution: post or void (the hold)."
    )
    resolution_reason: str | None = None
    resolved_by: str | None = None
    peer_decision: str | None = Field(
        default=None, description="What the peer's receipt says: accepted or refused."
    )


class TradeFee(OutputModel):
    """A levy the trade paid: a trade of kind `fee` of its own, from `account` to the rule's
    treasury, booked with it (both or neither)."""

    rule: str
    account: str
    amount: int
    trade_id: uuid.UUID
    past_limit: bool = Field(description="Booked past a limit (the rule's over_limit = book).")


class FeeOf(OutputModel):
    """What a trade of kind `fee` charges for: a levy on a trade, or a periodic fee due at a
    period boundary."""

    rule: str
    kind: Literal["levy", "membership", "demurrage"]
    cause_trade_id: uuid.UUID | None = Field(description="A levy's trade.")
    due_at: datetime | None = Field(description="A periodic fee's boundary.")


class Trade(OutputModel):
    id: uuid.UUID
    key: str = Field(description="The Idempotency-Key the trade was created with.")
    payer: str
    payee: str
    amount: int
    status: TradeStatus
    posted_amount: int | None = Field(description="What was booked; may be less than a hold.")
    description: str
    external_ref: str | None
    metadata: dict[str, Any]
    reverses_trade_id: uuid.UUID | None
    reversed_by: uuid.UUID | None = Field(description="The trade that reversed this one.")
    kind: TradeKind
    reason: str | None = Field(description="An operator's reason (reversals, write-offs).")
    limit_override: bool = Field(description="Booked past a limit by an operator's override.")
    created_by: str = Field(description="Who entered it: role and key id, or a system job.")
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
    fees: list[TradeFee] = Field(
        description="The levies charged on this trade (a direct trade, or a hold when posted)."
    )
    fee: FeeOf | None = Field(description="For a trade of kind `fee`: what it charges for.")
    transfer: TransferView | None = Field(
        default=None, description="For a cross-network trade: where it stands with the peer."
    )
