"""An event's payload: its subject as of the event, in the shapes of schemas.py (version 1).

The audit record holds only what the change set; the rest comes from the subject's row, whose
other fields never change after the event (a trade changes only its status, posted amount and
resolution time, all in the record of that change; a request its status, reason, trade and
resolution). So a `trade.held` read after the hold posted still shows it pending."""

import uuid
from collections.abc import Sequence
from typing import Any

from mutualcredit.events.schemas import (
    RequestData,
    SettlementData,
    TradeData,
    TransferData,
)
from mutualcredit.federation.models import Settlement, Transfer
from mutualcredit.requests.models import PaymentRequest
from mutualcredit.schemas import OutputModel
from mutualcredit.trades.models import Trade


def as_of(state: dict[str, Any], after: dict[str, Any], changing: Sequence[str]) -> dict[str, Any]:
    """The subject as of the event: the fields that change over its life taken from the
    record (the row now may be further on), the others from the row."""
    for name in changing:
        if name in after:
            state[name] = after[name]
    return state


def dump(payload: OutputModel) -> dict[str, Any]:
    """The payload as JSON; `balances_after` only where a trade moved balances."""
    data = payload.model_dump(mode="json")
    if data.get("balances_after", {}) is None:
        del data["balances_after"]
    return data


def trade(trade: Trade, after: dict[str, Any], codes: dict[uuid.UUID, str]) -> TradeData:
    state = {
        **_columns(trade, TradeData, "payer", "payee", "metadata"),
        "payer": codes[trade.payer_id],
        "payee": codes[trade.payee_id],
        "metadata": trade.metadata_,
    }
    return TradeData.model_validate(as_of(state, after, ("status", "posted_amount", "resolved_at")))


def request(
    request: PaymentRequest, after: dict[str, Any], codes: dict[uuid.UUID, str]
) -> RequestData:
    state = {
        **_columns(request, RequestData, "payer", "payee"),
        "payer": codes[request.payer_id],
        "payee": codes[request.payee_id],
    }
    return RequestData.model_validate(
        as_of(state, after, ("status", "reason", "trade_id", "resolved_at"))
    )


def transfer(transfer: Transfer, after: dict[str, Any]) -> TransferData:
    state = _columns(transfer, TransferData)
    return TransferData.model_validate(
        as_of(state, after, ("status", "refusal_code", "resolved_at"))
    )


def settlement(settlement: Settlement, after: dict[str, Any], link_account: str) -> SettlementData:
    state = {**_columns(settlement, SettlementData, "link_account"), "link_account": link_account}
    return SettlementData.model_validate(as_of(state, after, ("status", "transfer_id")))


def _columns(row: object, model: type[OutputModel], *other: str) -> dict[str, Any]:
    """The row's columns named like the payload's fields (but those named in `other`)."""
    return {name: getattr(row, name) for name in model.model_fields if name not in other}
