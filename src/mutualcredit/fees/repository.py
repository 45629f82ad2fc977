"""SQL only: fee rules, their history, their dry runs and the charges they made.

Rules are written through the ORM (fees.service), where the database's guards (fee_rules_guard,
fee_rules_history) check and record each write; the charges are booked by the ledger's SQL
functions (migrations/sql/fees/), never here.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts.models import Account
from mutualcredit.fees.models import FeeCharge, FeeRule, FeeRuleChange


async def get_rule(
    session: AsyncSession, network_id: uuid.UUID, code: str, *, for_update: bool = False
) -> FeeRule | None:
    query = select(FeeRule).where(FeeRule.network_id == network_id, FeeRule.code == code)
    if for_update:
        query = query.with_for_update()
    rule: FeeRule | None = await session.scalar(query)
    return rule


async def list_rules(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    account_kind: str | None,
    after_code: str | None,
    limit: int,
) -> list[FeeRule]:
    """A network's rules in code order (keyset on code), optionally only those that charge
    accounts of one kind."""
    query = select(FeeRule).where(FeeRule.network_id == network_id)
    if account_kind is not None:
        query = query.where(FeeRule.account_kind == account_kind)
    if after_code is not None:
        query = query.where(FeeRule.code > after_code)
    return list(await session.scalars(query.order_by(FeeRule.code).limit(limit)))


async def history(
    session: AsyncSession, rule_id: uuid.UUID, *, after: int | None, limit: int
) -> list[FeeRuleChange]:
    query = select(FeeRuleChange).where(FeeRuleChange.rule_id == rule_id)
    if after is not None:
        query = query.where(FeeRuleChange.id > after)
    return list(await session.scalars(query.order_by(FeeRuleChange.id).limit(limit)))


_PREVIEW = text(
    """
    SELECT p.account, p.base, p.fee, p.amount, p.waived, p.past_limit, p.trades
    FROM fee_rules r CROSS JOIN LATERAL mc_fee_preview(r, :at) p
    WHERE r.id = :rule_id
    """
)


async def preview(session: AsyncSession, rule_id: uuid.UUID, at: datetime) -> list[Row[Any]]:
    """mc_fee_preview of the rule as it stands in this transaction (a dry run reads a rule it
    inserted in a savepoint it then rolls back)."""
    return list(await session.execute(_PREVIEW, {"rule_id": rule_id, "at": at}))


_BOUNDARY = text("SELECT mc_fee_boundary(:period, :at)")


async def next_boundary(session: AsyncSession, period: str, at: datetime) -> datetime:
    """The first period boundary at or after `at` (the ledger's own rule, mc_fee_boundary)."""
    boundary: datetime = await session.scalar(_BOUNDARY, {"period": period, "at": at})
    return boundary


async def list_charges(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    rule_id: uuid.UUID | None,
    account_id: uuid.UUID | None,
    before: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A network's charges, newest first (keyset on created_at, id, descending)."""
    account = Account.__table__.alias("account")
    treasury = Account.__table__.alias("treasury")
    query = (
        select(
            FeeCharge.id,
            FeeRule.code.label("rule"),
            FeeRule.kind,
            account.c.code.label("account"),
            treasury.c.code.label("treasury"),
            FeeCharge.amount,
            FeeCharge.waived,
            FeeCharge.past_limit,
            FeeCharge.trade_id,
            FeeCharge.cause_trade_id,
            FeeCharge.due_at,
            FeeCharge.created_at,
        )
        .join(FeeRule, FeeRule.id == FeeCharge.rule_id)
        .join(account, account.c.id == FeeCharge.account_id)
        .join(treasury, treasury.c.id == FeeCharge.treasury_id)
        .where(FeeCharge.network_id == network_id)
    )
    if rule_id is not None:
        query = query.where(FeeCharge.rule_id == rule_id)
    if account_id is not None:
        query = query.where(FeeCharge.account_id == account_id)
    if before is not None:
        query = query.where(tuple_(FeeCharge.created_at, FeeCharge.id) < before)
    query = query.order_by(FeeCharge.created_at.desc(), FeeCharge.id.desc()).limit(limit)
    return [dict(row._mapping) for row in await session.execute(query)]
