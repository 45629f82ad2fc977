import uuid
from datetime import datetime
from typing import Annotated, Literal

import httpx
from pydantic import AfterValidator, Field

from mutualcredit.schemas import Flag, InputModel, OutputModel


def _parseable(url: str) -> str:
    """A URL the HTTP client can call: a host that encodes (IDNA) and nothing it cannot parse."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a URL this service can call: {exc}") from None
    if not host:
        raise ValueError("not a URL this service can call: no host")
    return url


Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        pattern=r"^https?://",
        description="Where deliveries are POSTed: http(s), a public address (unless the "
        "deployment allows private ones). Redirects are not followed.",
    ),
    AfterValidator(_parseable),
]
EventTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]] | None,
    Field(
        max_length=100,
        description="The event types to deliver (see the OpenAPI document's webhooks); null or "
        "absent: every type, including types added later.",
    ),
]
AccountCode = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=100,
        description="Only events about this account; null: every event of the network.",
    ),
]
Description = Annotated[str, Field(max_length=500, description="A note for people.")]


class WebhookCreate(InputModel):
    url: Url
    event_types: EventTypes = None
    account: AccountCode = None
    description: Description = ""


class WebhookUpdate(InputModel):
    """What to change; fields left out stay as they are."""

    url: Url | None = None
    event_types: EventTypes = None
    all_event_types: Flag = Field(
        default=False, description="true: deliver every type from now on (event_types: null)."
    )
    account: AccountCode = None
    description: Description | None = None
    enabled: Flag | None = Field(
        default=None,
        description="false: stop deliveries (the cursor stays where it is); true: resume them "
        "from where they stopped, at once.",
    )


class Webhook(OutputModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str] | None
    account: str | None
    member_account: str | None = Field(
        description="The member account whose endpoint this is: it receives that account's"
        " events in the member's view. null: an operator's endpoint."
    )
    status: Literal["enabled", "disabled"]
    status_reason: str | None
    secret_version: int
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation still signs too.",
    )
    cursor: int = Field(description="The seq of the last event this endpoint is done with.")
    failing_since: datetime | None
    next_attempt_at: datetime
    created_by: str
    created_at: datetime


class WebhookWithSecret(Webhook):
    secret: str | None = Field(
        description="The signing secret (`whsec_...`), shown in this answer only; give it to "
        "standardwebhooks.Webhook(secret) to verify deliveries."
    )


class RedeliveryCreate(InputModel):
    seq: Annotated[int, Field(ge=1, le=2**63 - 1, description="The event's seq, as in the feed.")]


class Redelivery(OutputModel):
    id: int
    seq: int
    next_attempt_at: datetime
    requested_by: str
    created_at: datetime


class WebhookAttempt(OutputModel):
    id: int
    event_id: str
    seq: int
    event_type: str
    attempt: int = Field(description="1 for the first attempt at this event, then 2, ...")
    redelivery: bool
    outcome: Literal["delivered", "retrying", "failed"] = Field(
        description="delivered: answered 2xx; retrying: tried again later; failed: its retry "
        "schedule spent, the endpoint moved on (redeliver it by hand)."
    )
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: datetime
