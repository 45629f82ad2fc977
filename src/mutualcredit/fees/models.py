"""Fees: the rules a network funds itself by, the charges they make, and the runs that make the
periodic ones.

Every charge is an ordinary trade of kind `fee` from the charged account to the rule's treasury
(a system account), booked by the ledger's SQL functions, never by this code: a levy in the same
transaction as the trade it is levied on (`mc_create_trade`, `mc_resolve_trade`), a periodic
charge by the sweeper `mc_charge_fees`. `fee_charges` links each charge to its cause and makes it
unique: one per (rule, trade, account) for a levy, one per (rule, boundary, account) for a
periodic charge. See docs/design.md, "Fees".
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import conv

from mutualcredit.db import Base

MAX_AMOUNT = 9007199254740991
# A rate is num/den with 0 <= num <= den <= 10^12: at most a whole (100 %) of what it applies
# to, and at most twelve decimal places, so that amount x num never needs more than numeric.
MAX_RATE_DENOMINATOR = 10**12


class FeeRule(Base):
    """One rule: a levy on trades, a membership fee per period, or demurrage per period."""

    __tablename__ = "fee_rules"
    __table_args__ = (
        UniqueConstraint("network_id", "code"),
        UniqueConstraint("network_id", "id"),
        ForeignKeyConstraint(["network_id", "treasury_id"], ["accounts.network_id", "accounts.id"]),
        CheckConstraint("code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name="code_valid"),
        CheckConstraint("kind IN ('levy', 'membership', 'demurrage')", name="kind_valid"),
        CheckConstraint("account_kind IN ('member', 'system')", name="account_kind_valid"),
        CheckConstraint("over_limit IN ('refuse', 'book')", name="over_limit_valid"),
        CheckConstraint(
            f"rate_den BETWEEN 1 AND {MAX_RATE_DENOMINATOR} AND rate_num BETWEEN 0 AND rate_den",
            name="rate_range",
        ),
        CheckConstraint(
            f"amount BETWEEN 0 AND {MAX_AMOUNT}"
            f" AND (minimum IS NULL OR minimum BETWEEN 1 AND {MAX_AMOUNT})"
            f" AND (maximum IS NULL OR maximum BETWEEN 1 AND {MAX_AMOUNT})"
            " AND (minimum IS NULL OR maximum IS NULL OR minimum <= maximum)"
            f" AND threshold BETWEEN 0 AND {MAX_AMOUNT}",
            name="amounts_range",
        ),
        # Each kind has the fields it reads and none it does not.
        CheckConstraint(
            "CASE kind"
            " WHEN 'levy' THEN (charge_payer OR charge_payee) AND period IS NULL"
            "   AND basis IS NULL AND threshold = 0 AND (rate_num > 0 OR amount > 0)"
            " WHEN 'membership' THEN NOT charge_payer AND NOT charge_payee"
            "   AND period IS NOT NULL AND basis IS NULL AND threshold = 0 AND rate_num = 0"
            "   AND amount > 0 AND minimum IS NULL AND maximum IS NULL"
            " ELSE NOT charge_payer AND NOT charge_payee AND period IS NOT NULL"
            "   AND basis IS NOT NULL AND rate_num > 0 AND amount = 0 END",
            name="fields_of_kind",
        ),
        CheckConstraint(
            "period IS NULL OR period IN ('minute', 'hour', 'day', 'week', 'month', 'year')",
            name="period_valid",
        ),
        CheckConstraint(
            "basis IS NULL OR basis IN ('balance_above', 'beyond_credit_limit')",
            name="basis_valid",
        ),
        CheckConstraint(
            "statuses <@ ARRAY['active', 'suspended']::text[] AND cardinality(statuses) >= 1",
            name="statuses_valid",
        ),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("char_length(description) <= 500", name="description_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    code: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    treasury_id: Mapped[uuid.UUID]
    account_kind: Mapped[str] = mapped_column(Text, server_default="member")
    statuses: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("ARRAY['active']::text[]")
    )
    charge_payer: Mapped[bool] = mapped_column(server_default=text("false"))
    charge_payee: Mapped[bool] = mapped_column(server_default=text("false"))
    rate_num: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rate_den: Mapped[int] = mapped_column(BigInteger, server_default="1")
    amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    minimum: Mapped[int | None] = mapped_column(BigInteger)
    maximum: Mapped[int | None] = mapped_column(BigInteger)
    basis: Mapped[str | None] = mapped_column(Text)
    threshold: Mapped[int] = mapped_column(BigInteger, server_default="0")
    period: Mapped[str | None] = mapped_column(Text)
    over_limit: Mapped[str] = mapped_column(Text, server_default="refuse")
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    description: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeeRuleChange(Base):
    """A rule's history: its creation and every change, with who, when, the fields before and
    after, and the reason. Written by the trigger fee_rules_history; append-only."""

    __tablename__ = "fee_rule_changes"
    __table_args__ = (
        ForeignKeyConstraint(["network_id", "rule_id"], ["fee_rules.network_id", "fee_rules.id"]),
        CheckConstraint("kind IN ('created', 'changed')", name="kind_valid"),
        Index(None, "rule_id", "changed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    rule_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB(astext_type=Text()))
    after: Mapped[dict[str, Any]] = mapped_column(JSONB(astext_type=Text()))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeeCharge(Base):
    """One charge of one rule on one account: for a levy, caused by a trade; for a periodic
    rule, due at a period boundary. `amount` was booked (as the trade `trade_id`); `waived` is
    what the account could not pay under the rule's `over_limit = 'refuse'` (periodic charges
    only). A periodic charge that took nothing has a row too, so that it is made once."""

    __tablename__ = "fee_charges"
    __table_args__ = (
        ForeignKeyConstraint(["network_id", "rule_id"], ["fee_rules.network_id", "fee_rules.id"]),
        ForeignKeyConstraint(["network_id", "account_id"], ["accounts.network_id", "accounts.id"]),
        ForeignKeyConstraint(["network_id", "treasury_id"], ["accounts.network_id", "accounts.id"]),
        CheckConstraint("(cause_trade_id IS NULL) <> (due_at IS NULL)", name="one_cause"),
        CheckConstraint(
            f"amount BETWEEN 0 AND {MAX_AMOUNT} AND waived BETWEEN 0 AND {MAX_AMOUNT}"
            " AND (amount > 0 OR waived > 0)",
            name="amounts_range",
        ),
        CheckConstraint("(trade_id IS NULL) = (amount = 0)", name="booked_when_charged"),
        CheckConstraint("waived = 0 OR due_at IS NOT NULL", name="waived_periodic_only"),
        Index(
            conv("fee_charges_levy_once"),
            "rule_id",
            "cause_trade_id",
            "account_id",
            unique=True,
            postgresql_where=text("cause_trade_id IS NOT NULL"),
        ),
        Index(
            conv("fee_charges_period_once"),
            "rule_id",
            "due_at",
            "account_id",
            unique=True,
            postgresql_where=text("due_at IS NOT NULL"),
        ),
        Index(conv("fee_charges_trade_id_key"), "trade_id", unique=True),
        Index(None, "cause_trade_id", postgresql_where=text("cause_trade_id IS NOT NULL")),
        Index(None, "network_id", "created_at", "id"),
        Index(None, "account_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    rule_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID]
    treasury_id: Mapped[uuid.UUID]
    cause_trade_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("trades.id"))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    amount: Mapped[int] = mapped_column(BigInteger)
    waived: Mapped[int] = mapped_column(BigInteger, server_default="0")
    past_limit: Mapped[bool] = mapped_column(server_default=text("false"))
    trade_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("trades.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeeRun(Base):
    """A periodic rule's charging at one boundary: the rule as it stood when the run began
    (`rule`, frozen, so a change during the run applies from the next boundary), how far it has
    gone (`after_account_id`, accounts are charged in id order) and when it finished."""

    __tablename__ = "fee_runs"
    __table_args__ = (
        ForeignKeyConstraint(["network_id", "rule_id"], ["fee_rules.network_id", "fee_rules.id"]),
        # The sweeper asks each rule for its oldest unfinished run every round: without this,
        # that walks every finished run (a minute rule makes half a million a year).
        Index(
            conv("fee_runs_unfinished_idx"),
            "rule_id",
            "due_at",
            postgresql_where=text("finished_at IS NULL"),
        ),
    )

    rule_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB(astext_type=Text()))
    after_account_id: Mapped[uuid.UUID | None]
    charged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    accounts: Mapped[int] = mapped_column(BigInteger, server_default="0")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
