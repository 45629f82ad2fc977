"""Credit limits as policy: set (permanently or for a while), history, as-of, and defaults.

The history itself is written by the database (trigger accounts_limit_history) from the reason
set here with audit.context.explain: a limit can change only with a reason, by any path.

Temporary limits: `until` schedules a return to the permanent limits. A run of temporary changes
returns to the limits before the first of them; a permanent change cancels the scheduled return.
The sweeper applies due returns (SQL function mc_revert_due_limits), recorded as kind 'revert'.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.models import Account
from mutualcredit.audit.context import explain
from mutualcredit.errors import ValidationProblem
from mutualcredit.limits.errors import NoLimitsThen
from mutualcredit.limits.models import LimitChange
from mutualcredit.limits.schemas import DefaultsApply, LimitsUpdate, PlannedChange
from mutualcredit.networks.models import Network
from mutualcredit.pagination import after_int, page


def beyond_limits(account: Account) -> list[str]:
    beyond = []
    if account.balance - account.pending_debits < -account.credit_limit:
        beyond.append("credit_limit")
    if (
        account.balance_max is not None
        and account.balance + account.pending_credits > account.balance_max
    ):
        beyond.append("balance_max")
    return beyond


async def set_limits(
    session: AsyncSession, network_id: uuid.UUID, code: str, data: LimitsUpdate
) -> Account:
    account = await accounts.get_account(session, network_id, code, for_update=True)
    if data.until is not None:
        if data.until <= datetime.now(UTC):
            raise ValidationProblem("until: must be in the future")
        if account.revert_at is None:
            # The first of a run of temporary changes remembers the permanent limits.
            account.revert_credit_limit = account.credit_limit
            account.revert_balance_max = account.balance_max
        account.revert_at = data.until
        kind = "temporary"
    else:
        account.revert_at = None
        account.revert_credit_limit = None
        account.revert_balance_max = None
        kind = "set"
    await explain(session, data.reason, kind)
    account.credit_limit = data.credit_limit
    account.balance_max = data.balance_max
    await session.flush()
    return account


async def history(
    session: AsyncSession, account_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[LimitChange], str | None]:
    query = select(LimitChange).where(LimitChange.account_id == account_id)
    after = after_int(cursor)
    if after is not None:
        query = query.where(LimitChange.id > after)
    rows = list(await session.scalars(query.order_by(LimitChange.id).limit(limit + 1)))
    return page(rows, limit, lambda c: (c.id,))


async def default_history(session: AsyncSession, network_id: uuid.UUID) -> list[LimitChange]:
    query = (
        select(LimitChange)
        .where(LimitChange.network_id == network_id, LimitChange.account_id.is_(None))
        .order_by(LimitChange.id)
    )
    return list(await session.scalars(query))


async def limits_at(session: AsyncSession, account_id: uuid.UUID, at: datetime) -> LimitChange:
    """The change in force at `at`: the last one made at or before it."""
    change = await session.scalar(
        select(LimitChange)
        .where(LimitChange.account_id == account_id, LimitChange.changed_at <= at)
        .order_by(LimitChange.changed_at.desc(), LimitChange.id.desc())
        .limit(1)
    )
    if change is None:
        raise NoLimitsThen(f"The account did not exist at {at.isoformat()}")
    return change


async def apply_defaults(
    session: AsyncSession, network: Network, data: DefaultsApply
) -> list[PlannedChange]:
    """Brings existing accounts to the network's defaults. A dry run only reports the plan.

    Accounts are locked in id order (as every writer does) before anything changes. A scheduled
    return from a temporary limit is cancelled: the new defaults are the permanent limits now.
    """
    query = (
        select(Account)
        .where(
            Account.network_id == network.id,
            Account.status != "closed",
            Account.kind.in_([k.value for k in data.kinds]),
            or_(
                Account.credit_limit != network.default_credit_limit,
                Account.balance_max.is_distinct_from(network.default_balance_max),
            ),
        )
        .order_by(Account.id)
    )
    if not data.dry_run:
        query = query.with_for_update()
    targets = list(await session.scalars(query))
    plan = []
    for account in targets:
        used = account.pending_debits - account.balance
        held = account.balance + account.pending_credits
        max_after = network.default_balance_max
        plan.append(
            PlannedChange(
                account=account.code,
                account_id=account.id,
                credit_limit_before=account.credit_limit,
                credit_limit_after=network.default_credit_limit,
                balance_max_before=account.balance_max,
                balance_max_after=max_after,
                beyond_limits_after=used > network.default_credit_limit
                or (max_after is not None and held > max_after),
            )
        )
    if data.dry_run or not targets:
        return plan
    await explain(session, data.reason, "propagate")
    for account in targets:
        account.credit_limit = network.default_credit_limit
        account.balance_max = network.default_balance_max
        account.revert_at = None
        account.revert_credit_limit = None
        account.revert_balance_max = None
    await session.flush()
    return plan
