"""The event a client reads from the feed (and, in part B, receives at a webhook)."""

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
