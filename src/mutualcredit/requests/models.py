"""Payment requests (invoices) and payee pre-approvals.

A request moves once from open to a final status (drawn below); an accepted request points at
the trade that paid it (CHECK payment_requests_trade_when_accepted_check).

    open ──accept──► accepted (trade_id set)
      ├───reject───► rejected (reason)
      ├───cancel───► cancelled (by the payee who asked)
      └──expires_at─► expired
"""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import conv

from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.db import Base


class PaymentRequest(Base):
    __tablename__ = "payment_requests"
    __table_args__ = (
        CheckConstraint(f"amount BETWEEN 1 AND {MAX_AMOUNT}", name="amount_range"),
        CheckConstraint("payer_id <> payee_id", name="distinct_parties"),
        CheckConstraint(
            "status IN ('open', 'accepted', 'rejected', 'cancelled', 'expired')",
            name="status_valid",
        ),
        CheckConstraint(
            "(status = 'accepted') = (trade_id IS NOT NULL)", name="trade_when_accepted"
        ),
        CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="resolved_at_valid"),
        ForeignKeyConstraint(["network_id", "payer_id"], ["accounts.network_id", "accounts.id"]),
        ForeignKeyConstraint(["network_id", "payee_id"], ["accounts.network_id", "accounts.id"]),
        Index(None, "network_id", "created_at", "id"),
        Index(
            conv("payment_requests_open_expires_at_idx"),
            "expires_at",
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID]
    payer_id: Mapped[uuid.UUID]
    payee_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[str] = mapped_column(Text, server_default="open")
    reason: Mapped[str | None] = mapped_column(Text)
    trade_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("trades.id"))
    created_by: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PayeeApproval(Base):
    """A payer's standing consent: requests from this payee (up to max_amount) post at once."""

    __tablename__ = "payee_approvals"
    __table_args__ = (
        CheckConstraint(
            f"max_amount IS NULL OR max_amount BETWEEN 1 AND {MAX_AMOUNT}", name="max_amount_range"
        ),
        CheckConstraint("payer_id <> payee_id", name="distinct_parties"),
        ForeignKeyConstraint(["network_id", "payer_id"], ["accounts.network_id", "accounts.id"]),
        ForeignKeyConstraint(["network_id", "payee_id"], ["accounts.network_id", "accounts.id"]),
    )

    network_id: Mapped[uuid.UUID]
    payer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    payee_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    max_amount: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
