"""An account: a member's or a system's position in one network.

Invariants kept by PostgreSQL on every row, whatever writes it:
- no write takes an account beyond `balance - pending_debits >= -credit_limit` or
  `balance + pending_credits <= balance_max`, nor further beyond them (trigger accounts_limits);
  lowering a limit below what an account uses is allowed and blocks it until it recovers, and
  only an operator's recorded override may book past a limit;
- every change of limits is recorded with its reason (trigger accounts_limit_history);
- a closed account holds nothing               (CHECK accounts_closed_empty_check)
- every UPDATE keeps the network's balances summing to zero and its pending debits equal to its
  pending credits; accounts open empty and are never deleted (triggers, see migration 0001).

Balances move only through the ledger's SQL functions (mc_create_trade and friends); the ORM
here writes limits, names and status.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.db import Base


class AccountKind(StrEnum):
    member = "member"
    system = "system"
    link = "link"


class AccountStatus(StrEnum):
    """active ⇄ suspended → closed; closed is final and needs a zero balance and no holds."""

    active = "active"
    suspended = "suspended"
    closed = "closed"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("network_id", "code"),
        # Target of the composite foreign keys that keep trades and entries inside one network.
        UniqueConstraint("network_id", "id"),
        CheckConstraint("code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name="code_format"),
        CheckConstraint("kind IN ('member', 'system', 'link')", name="kind_valid"),
        CheckConstraint("status IN ('active', 'suspended', 'closed')", name="status_valid"),
        CheckConstraint(f"credit_limit BETWEEN 0 AND {MAX_AMOUNT}", name="credit_limit_range"),
        CheckConstraint(
            f"balance_max IS NULL OR balance_max BETWEEN 0 AND {MAX_AMOUNT}",
            name="balance_max_range",
        ),
        CheckConstraint("pending_debits >= 0 AND pending_credits >= 0", name="pending_nonnegative"),
        CheckConstraint(
            "(revert_at IS NULL) = (revert_credit_limit IS NULL)", name="revert_complete"
        ),
        CheckConstraint(
            f"revert_credit_limit BETWEEN 0 AND {MAX_AMOUNT}"
            f" AND (revert_balance_max IS NULL OR revert_balance_max BETWEEN 0 AND {MAX_AMOUNT})",
            name="revert_range",
        ),
        CheckConstraint(
            "status <> 'closed' OR (balance = 0 AND pending_debits = 0 AND pending_credits = 0)",
            name="closed_empty",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    code: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, server_default="")
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    balance: Mapped[int] = mapped_column(BigInteger, server_default="0")
    pending_debits: Mapped[int] = mapped_column(BigInteger, server_default="0")
    pending_credits: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credit_limit: Mapped[int] = mapped_column(BigInteger)
    balance_max: Mapped[int | None] = mapped_column(BigInteger)
    # A temporary limit: at revert_at the limits return to these values (by the sweeper).
    revert_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revert_credit_limit: Mapped[int | None] = mapped_column(BigInteger)
    revert_balance_max: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
