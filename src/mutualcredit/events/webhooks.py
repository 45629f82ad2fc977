"""The event types in the OpenAPI document's `webhooks` section: one operation per type, its
body the event with that type's payload (schemas.py). A subscriber's endpoint receives these
bodies; the feed's items have the same shape. Documentation only: nothing here is served."""

from typing import Any

from fastapi import APIRouter

from mutualcredit.apidoc import operation_id
from mutualcredit.events.schemas import (
    AccountEvent,
    Event,
    FeeEvent,
    RequestEvent,
    SettlementEvent,
    TradeEvent,
    TransferEvent,
    WebhookEvent,
)
from mutualcredit.events.service import EVENT_TYPES

webhooks = APIRouter(tags=["events"], generate_unique_id_function=operation_id)

_BODIES: dict[str, type[Event]] = {
    "trade": TradeEvent,
    "fee": FeeEvent,
    "request": RequestEvent,
    "account": AccountEvent,
    "transfer": TransferEvent,
    "settlement": SettlementEvent,
    "webhook": WebhookEvent,
}


def _declare(event_type: str, body_model: type[Event]) -> None:
    async def receive(body: Any) -> None:
        """Receives one event."""

    receive.__annotations__["body"] = body_model
    webhooks.post(
        event_type,
        name=event_type.replace(".", "_"),
        summary=EVENT_TYPES[event_type],
        description=f"The body of a `{event_type}` event (payload version 1). Answer with any"
        " 2xx once it is safely received.",
        status_code=204,
    )(receive)


for _type in EVENT_TYPES:
    _declare(_type, _BODIES[_type.split(".")[0]])
