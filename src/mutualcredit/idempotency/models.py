"""Stored responses of writes other than trades, keyed by (API key, Idempotency-Key).

A record is inserted, in the request's own transaction, before the write runs: a concurrent
duplicate waits on the primary key until the first commits, then replays its response (or, if the
first rolled back, runs the write itself). Trades keep their keys in `trades` and
`trade_rejections` instead, scoped to the network.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, LargeBinary, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mutualcredit.db import Base


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int | None]
    response: Mapped[Any | None] = mapped_column(JSONB(astext_type=Text()))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
