"""Fee rules: made and changed by operators with a reason, read by those they may charge, tried
before they take effect (a dry run), and the charges they made.

The ledger books every charge itself (migrations/sql/fees/); this module only writes rules.
The database checks each write (fee_rules_guard: the treasury is an active system account, no
two rules of a kind charge the same accounts at the same time, code and kind never change) and
records it with its reason (fee_rules_history, from the reason set here with
audit.context.explain just before the write). Its refusals, named by constraint, become the
stable problems of fees.errors.

What depends on the time (a start in the past, an end already passed) is checked here, inside
the write the Idempotency-Key guards, so that a retry is answered before any such check.

A dry run makes the rule for real inside a savepoint, so that every guard the database keeps
runs on it, reads what mc_fee_preview makes of it, and rolls the savepoint back: the rule it
shows is exactly the one a real request would make, and nothing of it stays.
"""

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.audit.context import explain
from mutualcredit.auth.models import Role
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.auth.service import Principal
from mutualcredit.errors import Forbidden, ProblemError, ValidationProblem
from mutualcredit.fees import repository
from mutualcredit.fees.errors import FeeRuleExists, FeeRuleNotFound, FeeRuleOverlap, TreasuryInvalid
from mutualcredit.fees.models import FeeRule as FeeRuleRow
from mutualcredit.fees.models import FeeRuleChange as FeeRuleChangeRow
from mutualcredit.fees.schemas import (
    FIELDS_OF_KIND,
    KIND_FIELDS,
    FeeCharge,
    FeePreview,
    FeeRate,
    FeeRule,
    FeeRuleChange,
    FeeRuleCreate,
    FeeRuleUpdate,
    PreviewCharge,
    misplaced,
    rule_problems,
)
from mutualcredit.pagination import after_int, after_time_and_id, decode_cursor, page

PERIODIC = ("membership", "demurrage")


def _problem(field: str, message: str) -> ValidationProblem:
    """A validation error naming its field, as the framework's own are."""
    return ValidationProblem(
        f"{field}: {message}",
        errors=[{"location": ["body", field], "message": message, "type": "value_error"}],
    )


def _database_error(exc: DBAPIError) -> tuple[str | None, str | None]:
    """The constraint a database error names, and its DETAIL (asyncpg's error is the cause of
    the driver adapter's, which is the cause of SQLAlchemy's)."""
    current: BaseException | None = exc
    while current is not None:
        name = getattr(current, "constraint_name", None)
        if name:
            return str(name), getattr(current, "detail", None)
        current = current.__cause__ or getattr(current, "orig", None)
    return None, None


def _refusal(exc: DBAPIError, code: str, treasury: str) -> ProblemError | None:
    """The problem a guard's refusal of a rule's write stands for; None for anything else."""
    constraint, detail = _database_error(exc)
    if constraint == "fee_rules_network_id_code_key":
        return FeeRuleExists(f"A fee rule {code!r} exists in this network", fee_rule=code)
    if constraint == "fee_rules_treasury_valid":
        return TreasuryInvalid(
            f"{treasury!r} is not an active system account of this network", treasury=treasury
        )
    if constraint == "fee_rules_no_overlap":
        return FeeRuleOverlap(
            f"Fee rule {detail!r} charges the same accounts at the same time", overlaps=detail
        )
    if constraint == "fee_rules_fixed":
        # The rule started between this request's own check and its write.
        return ValidationProblem(
            "The rule has started: its start and its period no longer change; end it and make "
            "a new rule"
        )
    if (
        constraint is not None
        and constraint.startswith("fee_rules_")
        and constraint.endswith("_check")
    ):
        # Whatever the checks above the database let through (they mirror its CHECKs).
        return ValidationProblem(f"The rule is not well formed ({constraint})")
    return None


def in_force(rule: FeeRuleRow, now: datetime) -> bool:
    return rule.starts_at <= now and (rule.ends_at is None or now < rule.ends_at)


def _fields(values: Mapping[str, Any], treasury: str) -> dict[str, Any]:
    """A rule's columns (a row, or a snapshot of one in its history) as the API names them: the
    fields of another kind of rule are null."""
    takes = FIELDS_OF_KIND[values["kind"]]
    payer, payee = values["charge_payer"], values["charge_payee"]
    charge = "both" if payer and payee else "payer" if payer else "payee" if payee else None
    own = {
        "statuses": list(values["statuses"]),
        "charge": charge,
        "rate": {"num": values["rate_num"], "den": values["rate_den"]},
        "amount": values["amount"],
        "minimum": values["minimum"],
        "maximum": values["maximum"],
        "basis": values["basis"],
        "threshold": values["threshold"],
        "period": values["period"],
    }
    return {
        "code": values["code"],
        "kind": values["kind"],
        "treasury": treasury,
        "account_kind": values["account_kind"],
        **{name: value if name in takes else None for name, value in own.items()},
        "over_limit": values["over_limit"],
        "starts_at": values["starts_at"],
        "ends_at": values["ends_at"],
        "description": values["description"],
    }


def _columns(rule: FeeRuleRow) -> dict[str, Any]:
    return {c.key: getattr(rule, c.key) for c in FeeRuleRow.__table__.columns}


def view(rule: FeeRuleRow, treasury: str, now: datetime) -> FeeRule:
    return FeeRule(
        **_fields(_columns(rule), treasury),
        in_force=in_force(rule, now),
        created_by=rule.created_by,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


async def _treasury_id(session: AsyncSession, network_id: uuid.UUID, code: str) -> uuid.UUID:
    try:
        return (await accounts.get_account(session, network_id, code)).id
    except AccountNotFound:
        raise TreasuryInvalid(f"No account {code!r} in this network", treasury=code) from None


async def _treasury_code(session: AsyncSession, rule: FeeRuleRow) -> str:
    return (await accounts.codes_by_id(session, [rule.treasury_id]))[rule.treasury_id]


async def _write(
    session: AsyncSession, rule: FeeRuleRow, treasury: str, change: Callable[[], None]
) -> Any:
    """Makes `change` to the rule and flushes it in a savepoint (returned, still open),
    answering the database's refusal with its problem. The change is made only once the
    savepoint is open: opening it flushes the session, and so does any query."""
    code = rule.code  # read now: a rollback expires the rule's fields
    savepoint = await session.begin_nested()
    try:
        change()
        session.add(rule)
        await session.flush()
    except DBAPIError as exc:
        await savepoint.rollback()
        refusal = _refusal(exc, code, treasury)
        if refusal is None:
            raise
        raise refusal from exc
    # The guard sets created_at and updated_at.
    await session.refresh(rule)
    return savepoint


async def _preview(
    session: AsyncSession, rule: FeeRuleRow, treasury: str, now: datetime
) -> FeePreview:
    rows = await repository.preview(session, rule.id, now)
    due_at = None
    if rule.period is not None:
        due_at = await repository.next_boundary(session, rule.period, max(now, rule.starts_at))
        if rule.ends_at is not None and due_at >= rule.ends_at:
            due_at = None
    return FeePreview(
        rule=view(rule, treasury, now),
        charges=[PreviewCharge.model_validate(row._mapping) for row in rows],
        due_at=due_at,
    )


async def create_rule(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, data: FeeRuleCreate
) -> FeeRule | FeePreview:
    require_operator(principal)
    now = datetime.now(UTC)
    if data.starts_at is not None and data.starts_at < now:
        raise _problem("starts_at", "must not be in the past (omit it to start now)")
    starts_at = data.starts_at or now
    if data.ends_at is not None and data.ends_at <= starts_at:
        raise _problem("ends_at", "must be after starts_at")
    if await repository.get_rule(session, network_id, data.code) is not None:
        # Said before any overlap with itself: the unique key (mapped below, for a race) is
        # checked by the database only after the guard.
        raise FeeRuleExists(f"A fee rule {data.code!r} exists in this network", fee_rule=data.code)
    treasury_id = await _treasury_id(session, network_id, data.treasury)
    rule = FeeRuleRow(
        network_id=network_id,
        code=data.code,
        kind=data.kind,
        treasury_id=treasury_id,
        account_kind=data.account_kind,
        statuses=list(data.statuses or ["active"]),
        charge_payer=data.charge in ("payer", "both"),
        charge_payee=data.charge in ("payee", "both"),
        rate_num=data.rate.num if data.rate else 0,
        rate_den=data.rate.den if data.rate else 1,
        amount=data.amount or 0,
        minimum=data.minimum,
        maximum=data.maximum,
        basis=data.basis,
        threshold=data.threshold or 0,
        period=data.period,
        over_limit=data.over_limit,
        starts_at=starts_at,
        ends_at=data.ends_at,
        description=data.description,
        created_by=principal.actor,
    )
    await explain(session, data.reason)
    savepoint = await _write(session, rule, data.treasury, lambda: None)
    if not data.dry_run:
        await savepoint.commit()
        return view(rule, data.treasury, now)
    try:
        return await _preview(session, rule, data.treasury, now)
    finally:
        await savepoint.rollback()


async def _rule(
    session: AsyncSession,
    network_id: uuid.UUID,
    code: str,
    *,
    for_update: bool = False,
) -> FeeRuleRow:
    rule = await repository.get_rule(session, network_id, code, for_update=for_update)
    if rule is None:
        raise FeeRuleNotFound(f"No fee rule {code!r} in this network", fee_rule=code)
    return rule


def _kind_values(rule: FeeRuleRow) -> dict[str, Any]:
    """The rule's kind fields as a request would send them (rule_problems reads them so)."""
    values = {
        name: value
        for name, value in _fields(_columns(rule), "").items()
        if name in FIELDS_OF_KIND[rule.kind]
    }
    if values.get("rate") is not None:
        values["rate"] = FeeRate(**values["rate"])
    return values


async def update_rule(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    code: str,
    data: FeeRuleUpdate,
) -> FeeRule:
    """Changes the fields sent. A rule that has ended stays as it ended: reviving it would make
    the sweeper charge every boundary it missed while it was over. A rule's start moves only
    before it has started, and never into the past; its end never goes into the past."""
    require_operator(principal)
    rule = await _rule(session, network_id, code, for_update=True)
    now = datetime.now(UTC)
    sent = data.model_fields_set - {"reason"}
    for name in sorted(sent & KIND_FIELDS - FIELDS_OF_KIND[rule.kind]):
        raise _problem(name, misplaced(rule.kind))
    if rule.ends_at is not None and rule.ends_at <= now:
        raise _problem(
            "ends_at", f"the rule ended at {rule.ends_at.isoformat()}: make a new rule instead"
        )
    values = _kind_values(rule) | {name: getattr(data, name) for name in sent & KIND_FIELDS}
    problems = rule_problems(rule.kind, values)
    if problems:
        field, message = problems[0].split(": ", 1)
        raise _problem(field, message)
    if "period" in sent and data.period != rule.period and rule.starts_at <= now:
        # A new period would make the boundaries of the new one since the last charge due at
        # once: the sweeper would charge them all, retroactively.
        raise _problem(
            "period",
            "the rule has started: its period no longer changes; end it and make a new rule",
        )
    starts_at = rule.starts_at
    if "starts_at" in sent:
        assert data.starts_at is not None
        if rule.starts_at <= now:
            raise _problem("starts_at", "the rule has started: its start no longer moves")
        if data.starts_at < now:
            raise _problem("starts_at", "must not be in the past")
        starts_at = data.starts_at
    ends_at = data.ends_at if "ends_at" in sent else rule.ends_at
    if "ends_at" in sent and ends_at is not None and ends_at < now:
        raise _problem("ends_at", "must not be in the past")
    if ends_at is not None and ends_at <= starts_at:
        raise _problem("ends_at", "must be after starts_at")

    treasury = await _treasury_code(session, rule)
    treasury_id = rule.treasury_id
    if "treasury" in sent:
        assert data.treasury is not None
        treasury = data.treasury
        treasury_id = await _treasury_id(session, network_id, treasury)
    await explain(session, data.reason)

    def change() -> None:
        rule.treasury_id = treasury_id
        if "charge" in sent:
            rule.charge_payer = data.charge in ("payer", "both")
            rule.charge_payee = data.charge in ("payee", "both")
        if "rate" in sent:
            assert data.rate is not None
            rule.rate_num, rule.rate_den = data.rate.num, data.rate.den
        for name in sent - {"treasury", "charge", "rate"}:
            value = getattr(data, name)
            setattr(rule, name, list(value) if name == "statuses" else value)

    savepoint = await _write(session, rule, treasury, change)
    await savepoint.commit()
    return view(rule, treasury, now)


async def _member_account_kind(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID
) -> str | None:
    """For a member key, the kind of its account: it sees the rules that may charge it."""
    if principal.role is not Role.member:
        require_reader(principal)
        return None
    assert principal.account_code is not None
    return (await accounts.get_account(session, network_id, principal.account_code)).kind


async def list_rules(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[FeeRule], str | None]:
    account_kind = await _member_account_kind(session, principal, network_id)
    after = None
    if cursor is not None:
        (value,) = decode_cursor(cursor, 1)
        after = str(value)
    rows = await repository.list_rules(
        session, network_id, account_kind=account_kind, after_code=after, limit=limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: (r.code,))
    codes = await accounts.codes_by_id(session, list({r.treasury_id for r in rows}))
    now = datetime.now(UTC)
    return [view(r, codes[r.treasury_id], now) for r in rows], next_cursor


async def get_rule(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, code: str
) -> FeeRule:
    account_kind = await _member_account_kind(session, principal, network_id)
    rule = await _rule(session, network_id, code)
    if account_kind is not None and rule.account_kind != account_kind:
        raise FeeRuleNotFound(f"No fee rule {code!r} in this network", fee_rule=code)
    return view(rule, await _treasury_code(session, rule), datetime.now(UTC))


async def history(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    code: str,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[FeeRuleChange], str | None]:
    require_reader(principal)
    rule = await _rule(session, network_id, code)
    rows = await repository.history(session, rule.id, after=after_int(cursor), limit=limit + 1)
    rows, next_cursor = page(rows, limit, lambda c: (c.id,))
    treasuries = {
        uuid.UUID(snapshot["treasury_id"])
        for row in rows
        for snapshot in (row.before, row.after)
        if snapshot is not None
    }
    codes = await accounts.codes_by_id(session, list(treasuries))
    return [_change(row, codes) for row in rows], next_cursor


def _change(row: FeeRuleChangeRow, codes: Mapping[uuid.UUID, str]) -> FeeRuleChange:
    def shown(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
        if snapshot is None:
            return None
        return _fields(snapshot, codes[uuid.UUID(snapshot["treasury_id"])])

    after = shown(row.after)
    assert after is not None
    return FeeRuleChange(
        id=row.id,
        kind=row.kind,
        before=shown(row.before),
        after=after,
        reason=row.reason,
        actor=row.actor,
        changed_at=row.changed_at,
    )


async def preview(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, code: str
) -> FeePreview:
    require_reader(principal)
    rule = await _rule(session, network_id, code)
    return await _preview(session, rule, await _treasury_code(session, rule), datetime.now(UTC))


async def list_charges(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    *,
    rule: str | None,
    account: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[FeeCharge], str | None]:
    """Newest first. A member key sees its own account's charges only (403 for another)."""
    if principal.role is Role.member:
        if account is not None and account != principal.account_code:
            raise Forbidden("A member key may only list its own account's charges")
        account = principal.account_code
    else:
        require_reader(principal)
    rule_id = (await _rule(session, network_id, rule)).id if rule is not None else None
    account_id = None
    if account is not None:
        account_id = (await accounts.get_account(session, network_id, account)).id
    rows = await repository.list_charges(
        session,
        network_id,
        rule_id=rule_id,
        account_id=account_id,
        before=after_time_and_id(cursor, int),
        limit=limit + 1,
    )
    rows, next_cursor = page(rows, limit, lambda r: (r["created_at"].isoformat(), r["id"]))
    return [FeeCharge.model_validate(r) for r in rows], next_cursor
