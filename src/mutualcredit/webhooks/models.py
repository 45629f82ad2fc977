"""Webhook endpoints, their delivery state and the delivery log.

An endpoint is a URL registered for a network, with the event types it wants (all when
`event_types` is NULL) and optionally one account's events only. An operator's endpoint sees
the network as an operator does. A member's endpoint (`member_account`, its own account) gets
only the events about that account, in a member's view (no other account's balance): the
database holds it to its own account (CHECK webhook_endpoints_member_own_account_check, and
foreign keys to the account). It carries its own
delivery state: a cursor over the network's event source (`cursor`, the last event seq it is
done with) and the schedule of the next attempt. Deliveries go in seq order, one in flight per
endpoint: the event after the cursor is sent until it is answered 2xx, or until its retry
schedule is spent (then it is logged as failed and the cursor moves on; an operator can
redeliver it). A worker claims an endpoint that is due (`next_attempt_at` passed) and behind
its network's sealed head with FOR UPDATE SKIP LOCKED, and leases it (`next_attempt_at` pushed
past the time a batch of up to 100 events may take: twice the call timeout and a margin)
before calling out, so two workers never send its events at once; it sends them in order,
stops at the first failure, and records every attempt (one row each in webhook_attempts) and
the cursor's move in one transaction. After a crash the lease runs out and the events not yet
recorded (with the same webhook-ids) are sent again.

    enabled ──operator disables / failing for `disable_after_days`──► disabled
      ▲                                                                 │
      └───────────────────── operator enables ─────────────────────────┘

Secrets are stored sealed (AES-256-GCM under MUTUALCREDIT_SECRET_KEY, the endpoint id as
associated data), never logged and never returned after the answer that made them. After a
rotation the previous secret signs too, alongside the new one, until `previous_secret_expires_at`.
"""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from mutualcredit.db import Base


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("status IN ('enabled', 'disabled')", name="status_valid"),
        CheckConstraint("attempt >= 0", name="attempt_valid"),
        CheckConstraint(
            "member_account IS NULL OR account = member_account", name="member_own_account"
        ),
        ForeignKeyConstraint(["network_id", "account"], ["accounts.network_id", "accounts.code"]),
        ForeignKeyConstraint(
            ["network_id", "member_account"], ["accounts.network_id", "accounts.code"]
        ),
        Index(None, "network_id", "created_at", "id"),
        Index(None, "next_attempt_at", postgresql_where=text("status = 'enabled'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    event_types: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    account: Mapped[str | None] = mapped_column(Text)
    # The member account whose endpoint this is (NULL: an operator's), fixed when it is made.
    member_account: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="enabled")
    status_reason: Mapped[str | None] = mapped_column(Text)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    previous_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    secret_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    # Delivery state: bookkeeping of the workers, kept out of the audit log.
    cursor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookRedelivery(Base):
    """An event an operator asked to send again, outside the endpoint's order: once, at once,
    then with the same schedule as any delivery."""

    __tablename__ = "webhook_redelivery_requests"
    __table_args__ = (Index(None, "next_attempt_at", postgresql_where=text("done_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """The delivery log: one row per attempt, what it sent and what came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        CheckConstraint("outcome IN ('delivered', 'retrying', 'failed')", name="outcome_valid"),
        Index(None, "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    redelivery: Mapped[bool] = mapped_column(Boolean, server_default="false")
    outcome: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
