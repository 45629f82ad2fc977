"""Trades, their entries, and remembered refusals.

Invariants kept by PostgreSQL (migrations/sql/, one file per function and trigger):
- the entries inserted by one statement sum to zero per trade (trigger entries_zero_sum), and
  entries never change (entries_append_only): so every trade's entries sum to zero;
- a trade changes only from pending to posted, voided or expired, once, and only in its status,
  posted_amount and resolved_at (trades_final); trades are never deleted;
- a key is used once per network, by a trade or by a refusal (unique indexes, plus an advisory
  lock per key in mc_create_trade that makes the two exclusive);
- payer, payee and entries belong to the trade's network (composite foreign keys);
- amounts, statuses and kinds are well formed (domains trade_amount, trade_status, trade_kind,
  entry_amount; the rules that span columns stay CHECK constraints).
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import conv

from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.db import Base, domain

# Single-column rules as domains (see accounts.models for why).
TRADE_AMOUNT = domain("trade_amount", BigInteger(), f"VALUE BETWEEN 1 AND {MAX_AMOUNT}")
TRADE_STATUS = domain("trade_status", Text(), "VALUE IN ('pending', 'posted', 'voided', 'expired')")
TRADE_KIND = domain(
    "trade_kind",
    Text(),
    "VALUE IN ('transfer', 'reversal', 'write_off', 'request', 'federation', 'settlement', 'fee')",
)
ENTRY_AMOUNT = domain("entry_amount", BigInteger(), "VALUE <> 0")


class TradeKind(StrEnum):
    transfer = "transfer"
    reversal = "reversal"
    write_off = "write_off"
    request = "request"
    federation = "federation"
    settlement = "settlement"
    fee = "fee"


class TradeStatus(StrEnum):
    pending = "pending"
    posted = "posted"
    voided = "voided"
    expired = "expired"


class Trade(Base):
    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("network_id", "key"),
        ForeignKeyConstraint(["network_id", "payer_id"], ["accounts.network_id", "accounts.id"]),
        ForeignKeyConstraint(["network_id", "payee_id"], ["accounts.network_id", "accounts.id"]),
        CheckConstraint("payer_id <> payee_id", name="distinct_parties"),
        CheckConstraint(
            "(status = 'posted') = (posted_amount IS NOT NULL)"
            " AND (posted_amount IS NULL OR posted_amount BETWEEN 1 AND amount)",
            name="posted_amount_valid",
        ),
        CheckConstraint("(status = 'pending') = (resolved_at IS NULL)", name="resolved_at_valid"),
        CheckConstraint(
            "(kind = 'reversal') = (reverses_trade_id IS NOT NULL)", name="reversal_linked"
        ),
        CheckConstraint("NOT limit_override OR reason IS NOT NULL", name="override_reason"),
        Index(None, "network_id", "created_at", "id"),
        Index(
            conv("trades_reverses_trade_id_key"),
            "reverses_trade_id",
            unique=True,
            postgresql_where=text("reverses_trade_id IS NOT NULL"),
        ),
        Index(
            conv("trades_pending_payer_id_idx"),
            "payer_id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            conv("trades_pending_payee_id_idx"),
            "payee_id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            conv("trades_pending_expires_at_idx"),
            "expires_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    payer_id: Mapped[uuid.UUID]
    payee_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(TRADE_AMOUNT)
    status: Mapped[str] = mapped_column(TRADE_STATUS)
    posted_amount: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, server_default="")
    external_ref: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB(astext_type=Text()), server_default=text("'{}'::jsonb")
    )
    reverses_trade_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("trades.id"))
    kind: Mapped[str] = mapped_column(TRADE_KIND, server_default="transfer")
    reason: Mapped[str | None] = mapped_column(Text)
    limit_override: Mapped[bool] = mapped_column(server_default=false())
    created_by: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Entry(Base):
    """One side of a posted trade on one account, with the account's balance after it."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("trade_id", "account_id"),
        ForeignKeyConstraint(["network_id", "account_id"], ["accounts.network_id", "accounts.id"]),
        # Statements read an account's entries in (booked_at, id) order: per account both follow
        # the order in which the account's row lock was taken.
        Index(None, "account_id", "booked_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network_id: Mapped[uuid.UUID]
    trade_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trades.id"))
    account_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(ENTRY_AMOUNT)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TradeRejection(Base):
    """A refused trade key: a retry with the same key and request gets the same refusal."""

    __tablename__ = "trade_rejections"

    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    code: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(
        JSONB(astext_type=Text()), server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
