"""Limit history: every change of an account's limits or of a network's default limits.

Rows are written by PostgreSQL triggers (accounts_limit_history, networks_limit_history), never
by this code, so that no change escapes the record; a change without a reason is refused. The
table is append-only.
"""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualcredit.db import Base


class LimitChange(Base):
    __tablename__ = "limit_changes"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('open', 'set', 'temporary', 'revert', 'propagate', 'default')",
            name="kind_valid",
        ),
        CheckConstraint("(kind = 'default') = (account_id IS NULL)", name="subject"),
        ForeignKeyConstraint(["network_id", "account_id"], ["accounts.network_id", "accounts.id"]),
        Index(None, "account_id", "changed_at", "id"),
        Index(None, "network_id", "changed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    account_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(Text)
    credit_limit_before: Mapped[int | None] = mapped_column(BigInteger)
    credit_limit_after: Mapped[int] = mapped_column(BigInteger)
    balance_max_before: Mapped[int | None] = mapped_column(BigInteger)
    balance_max_after: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    reverts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
