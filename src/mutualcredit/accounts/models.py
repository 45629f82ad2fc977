"""An account: a member's or a system's position in one network.

Invariants kept by PostgreSQL on every row, whatever writes it:
- no write takes an account beyond `balance - pending_debits >= -credit_limit` or
  `balance + pending_credits <= balance_max`, nor further beyond them (trigger accounts_limits);
  lowering a limit below what an account uses is allowed and blocks it until it recovers, and
  only an operator's recorded override may book past a limit;
- every change of limits is recorded with its reason (trigger accounts_limit_history);
- a closed account holds nothing               (CHECK accounts_closed_empty_check)
- codes, kinds, statuses and limits are well formed, and holds never negative (domains
  account_code, account_kind, account_status, limit_amount, pending_amount: checked where such a
  value is written, so a booking, which writes balances only, does not pay for them);
- every UPDATE keeps the network's balances summing to zero and its pending debits equal to its
  pending credits; accounts open empty and are never deleted (triggers: migrations/sql/zero_sum/,
  guards/).

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
from mutualcredit.db import Base, domain

# Single-column rules as domains: PostgreSQL parses a table's CHECK constraints
# again for every statement that writes the table, but a domain's check once per session, and
# runs it only where a value of the domain is written.
ACCOUNT_CODE = domain("account_code", Text(), "VALUE ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'")
ACCOUNT_KIND = domain("account_kind", Text(), "VALUE IN ('member', 'system', 'link', 'settlement')")
ACCOUNT_STATUS = domain("account_status", Text(), "VALUE IN ('active', 'suspended', 'closed')")
LIMIT_AMOUNT = domain("limit_amount", BigInteger(), f"VALUE BETWEEN 0 AND {MAX_AMOUNT}")
PENDING_AMOUNT = domain("pending_amount", BigInteger(), "VALUE >= 0")


class AccountKind(StrEnum):
    """`link` and `settlement` are the two accounts of a federation link (`link.<peer>`, the
    peer network as one account; `settlement.<peer>`, where settlements paid outside the ledger
    land): made by creating the link, moved only by the protocol's bookings."""

    member = "member"
    system = "system"
    link = "link"
    settlement = "settlement"


# The kinds of account the federation protocol keeps for itself, and their codes' prefixes.
RESERVED_KINDS = frozenset({AccountKind.link, AccountKind.settlement})
RESERVED_PREFIXES = ("link.", "settlement.")


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
        CheckConstraint(
            "(revert_at IS NULL) = (revert_credit_limit IS NULL)", name="revert_complete"
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
    code: Mapped[str] = mapped_column(ACCOUNT_CODE)
    name: Mapped[str] = mapped_column(Text, server_default="")
    kind: Mapped[str] = mapped_column(ACCOUNT_KIND)
    status: Mapped[str] = mapped_column(ACCOUNT_STATUS, server_default="active")
    balance: Mapped[int] = mapped_column(BigInteger, server_default="0")
    pending_debits: Mapped[int] = mapped_column(PENDING_AMOUNT, server_default="0")
    pending_credits: Mapped[int] = mapped_column(PENDING_AMOUNT, server_default="0")
    credit_limit: Mapped[int] = mapped_column(LIMIT_AMOUNT)
    balance_max: Mapped[int | None] = mapped_column(LIMIT_AMOUNT)
    # A temporary limit: at revert_at the limits return to these values (by the sweeper).
    revert_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revert_credit_limit: Mapped[int | None] = mapped_column(LIMIT_AMOUNT)
    revert_balance_max: Mapped[int | None] = mapped_column(LIMIT_AMOUNT)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
