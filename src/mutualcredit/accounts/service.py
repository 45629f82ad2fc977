"""Accounts: opening, lifecycle, limits, and reading their entries.

Status moves as drawn; `closed` is final and needs a zero balance and no holds (the database
refuses anything else: CHECK accounts_closed_empty_check).

    active ──suspend──► suspended
      ▲  ◄─reactivate──    │
      │                    │
      └──close──► closed ◄─┘close
"""

import uuid
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts.errors import (
    AccountClosed,
    AccountCodeTaken,
    AccountNotEmpty,
    AccountNotFound,
    AccountReserved,
    TreasuryInUse,
    WriteOffAccountInvalid,
)
from mutualcredit.accounts.models import RESERVED_KINDS, Account, AccountStatus
from mutualcredit.accounts.schemas import AccountCreate, StatementEntry, StatusAction
from mutualcredit.audit.context import explain
from mutualcredit.auth.models import Role
from mutualcredit.auth.service import Principal
from mutualcredit.db import driver_connection
from mutualcredit.errors import Forbidden, ValidationProblem
from mutualcredit.hashing import request_hash
from mutualcredit.networks.models import Network
from mutualcredit.pagination import after_time_and_id, decode_cursor, page
from mutualcredit.trades import repository as trades
from mutualcredit.trades.errors import ledger_refusal
from mutualcredit.trades.models import Entry


async def open_account(session: AsyncSession, network: Network, data: AccountCreate) -> Account:
    fields = data.model_fields_set
    account = Account(
        network_id=network.id,
        code=data.code,
        name=data.name,
        kind=data.kind.value,
        credit_limit=(
            data.credit_limit if data.credit_limit is not None else network.default_credit_limit
        ),
        balance_max=data.balance_max if "balance_max" in fields else network.default_balance_max,
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError as exc:
        if "accounts_network_id_code_key" in str(exc.orig):
            raise AccountCodeTaken(f"Account {data.code!r} exists in this network") from exc
        raise
    await session.refresh(account)
    return account


async def get_account(
    session: AsyncSession, network_id: uuid.UUID, code: str, *, for_update: bool = False
) -> Account:
    query = select(Account).where(Account.network_id == network_id, Account.code == code)
    if for_update:
        query = query.with_for_update()
    account = await session.scalar(query)
    if account is None:
        raise AccountNotFound(f"No account {code!r} in this network", account=code)
    return account


def check_can_read(principal: Principal, code: str) -> None:
    """A member key reads only the account it holds; operators read every account."""
    if principal.role is Role.member and principal.account_code != code:
        raise Forbidden("A member key may only read its own account")


async def list_accounts(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    status: AccountStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Account], str | None]:
    query = select(Account).where(Account.network_id == network_id)
    if status is not None:
        query = query.where(Account.status == status.value)
    if cursor is not None:
        (after,) = decode_cursor(cursor, 1)
        query = query.where(Account.code > str(after))
    rows = list(await session.scalars(query.order_by(Account.code).limit(limit + 1)))
    return page(rows, limit, lambda a: (a.code,))


_TRANSITIONS: dict[StatusAction, tuple[set[AccountStatus], AccountStatus]] = {
    "suspend": ({AccountStatus.active, AccountStatus.suspended}, AccountStatus.suspended),
    "reactivate": ({AccountStatus.active, AccountStatus.suspended}, AccountStatus.active),
    "close": ({AccountStatus.active, AccountStatus.suspended}, AccountStatus.closed),
}


async def change_status(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    code: str,
    action: StatusAction,
    reason: str | None = None,
    write_off_to: str | None = None,
) -> Account:
    """Suspend, reactivate or close. Closing needs a zero balance and no holds; with
    `write_off_to`, a write-off trade to that system account first brings the balance to zero.
    """
    if write_off_to is not None:
        if action != "close":
            raise ValidationProblem("write_off_to: only when closing")
        if not reason:
            raise ValidationProblem("reason: required for a write-off")
        await _write_off(session, principal, network_id, code, write_off_to, reason)
    account = await get_account(session, network_id, code, for_update=True)
    _refuse_reserved(account)
    allowed_from, target = _TRANSITIONS[action]
    current = AccountStatus(account.status)
    if current is AccountStatus.closed:
        raise AccountClosed(f"Account {code!r} is closed; closing is final", account=code)
    assert current in allowed_from
    if target is AccountStatus.closed and (
        account.balance != 0 or account.pending_debits != 0 or account.pending_credits != 0
    ):
        raise AccountNotEmpty(
            f"Account {code!r} must be at zero with no pending trades to close",
            account=code,
            balance=account.balance,
            pending_debits=account.pending_debits,
            pending_credits=account.pending_credits,
        )
    await explain(session, reason)
    # The change is made inside the savepoint (opening one flushes the session), so that a
    # refusal of the database leaves the transaction usable.
    savepoint = await session.begin_nested()
    try:
        account.status = target.value
        await session.flush()
    except DBAPIError as exc:
        await savepoint.rollback()
        # The ledger refuses to close the treasury of a fee rule that has not ended
        # (accounts_treasury_open), naming the rule.
        orig = getattr(exc.orig, "__cause__", None)
        if getattr(orig, "constraint_name", None) == "fee_rules_treasury_open":
            rule = getattr(orig, "detail", None)
            raise TreasuryInUse(
                f"Account {code!r} is the treasury of fee rule {rule!r}: end the rule, or "
                "give it another treasury, first",
                account=code,
                fee_rule=rule,
            ) from exc
        raise
    await savepoint.commit()
    return account


def _refuse_reserved(account: Account) -> None:
    """A link's accounts stand for the peer network: the link's own suspend and resume stop
    what crosses it, and only the protocol moves their balances."""
    if account.kind in RESERVED_KINDS:
        raise AccountReserved(account=account.code)


async def _write_off(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    code: str,
    write_off_to: str,
    reason: str,
) -> None:
    """Moves the whole balance between the account and a system account, past limits (the
    operator's explicit decision, recorded with its reason on the trade and in the audit log).

    The balance is read without a lock and the trade locks both accounts in id order; if a
    trade slipped in between, the close that follows finds a non-zero balance and the whole
    request rolls back, write-off included.
    """
    account = await get_account(session, network_id, code)
    _refuse_reserved(account)
    target = await get_account(session, network_id, write_off_to)
    if target.kind != "system" or target.id == account.id or target.status != "active":
        raise WriteOffAccountInvalid(account=write_off_to)
    if account.pending_debits or account.pending_credits:
        raise AccountNotEmpty(
            f"Account {code!r} has pending trades: void or post them first",
            account=code,
            balance=account.balance,
            pending_debits=account.pending_debits,
            pending_credits=account.pending_credits,
        )
    if account.balance == 0:
        return
    payer, payee = (target.code, code) if account.balance < 0 else (code, target.code)
    result = await trades.create_trade(
        session,
        trades.Booking(
            network_id=network_id,
            key=f"write-off:{account.id}",
            request_hash=request_hash("write_off", {"to": write_off_to, "reason": reason}),
            payer=payer,
            payee=payee,
            amount=abs(account.balance),
            pending=False,
            expires_at=None,
            description=f"Write-off of {code} on closing",
            external_ref=None,
            metadata={},
            actor=principal.actor,
            kind="write_off",
            reason=reason,
            override=True,
            remember_refusal=False,
        ),
    )
    if result.outcome == "replayed":
        # The key names the account: a write-off booked before was kept only with the close
        # that followed it, so an open account with a balance has none: not expected.
        raise AccountNotEmpty(
            "The write-off could not be booked (account_not_empty)",
            account=code,
            refusal="account_not_empty",
        )
    if result.outcome != "created":
        # Why the ledger refused the write-off (the same error a trade would answer with) is
        # why the account cannot close: its balance stays.
        refusal = ledger_refusal(result)
        raise AccountNotEmpty(
            f"The write-off could not be booked ({refusal.code})",
            account=code,
            refusal=refusal.code,
        ) from refusal


# The statement page is the service's busiest read. It runs on the asyncpg connection under the
# request's session: building the ORM statement and validating ORM rows took about half of the
# page's Python time (bench/README.md). The plan is the same: the entries index on
# (account_id, booked_at, id) walks the page in order and stops after limit + 1 rows.
_ENTRIES_SQL = """
    SELECT e.id, e.trade_id, e.amount, e.balance_after, e.booked_at,
           c.code AS counterparty, t.description, t.external_ref
    FROM entries e
    JOIN trades t ON t.id = e.trade_id
    JOIN accounts c
      ON c.id = CASE WHEN t.payer_id = e.account_id THEN t.payee_id ELSE t.payer_id END
    WHERE e.account_id = $1
"""
_ENTRIES = TypeAdapter(list[StatementEntry])


def _period(since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = []
    if since is not None:
        conditions.append(Entry.booked_at >= since)
    if until is not None:
        conditions.append(Entry.booked_at < until)
    return conditions


async def list_entries(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[StatementEntry], str | None]:
    """An account's entries in booking order, a page at a time (keyset on booked_at, id)."""
    sql = [_ENTRIES_SQL]
    args: list[Any] = [account_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if since is not None:
        sql.append(f"AND e.booked_at >= {arg(since)}")
    if until is not None:
        sql.append(f"AND e.booked_at < {arg(until)}")
    after = after_time_and_id(cursor, int)
    if after is not None:
        sql.append(f"AND (e.booked_at, e.id) > ({arg(after[0])}, {arg(after[1])})")
    sql.append(f"ORDER BY e.booked_at, e.id LIMIT {arg(limit + 1)}")
    conn = await driver_connection(session)
    records = await conn.fetch("\n".join(sql), *args)
    rows = _ENTRIES.validate_python([dict(r) for r in records])
    return page(rows, limit, lambda r: (r.booked_at.isoformat(), r.id))


async def _balance_before(
    session: AsyncSession, account_id: uuid.UUID, moment: datetime | None
) -> int | None:
    """The balance after the last entry booked before `moment` (None: no such entry)."""
    query = select(Entry.balance_after).where(Entry.account_id == account_id)
    if moment is not None:
        query = query.where(Entry.booked_at < moment)
    query = query.order_by(Entry.booked_at.desc(), Entry.id.desc()).limit(1)
    result: int | None = await session.scalar(query)
    return result


async def statement_summary(
    session: AsyncSession, account_id: uuid.UUID, since: datetime | None, until: datetime | None
) -> dict[str, int]:
    opening = 0 if since is None else (await _balance_before(session, account_id, since) or 0)
    closing = await _balance_before(session, account_id, until)
    totals = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((Entry.amount < 0, -Entry.amount), else_=0)), 0),
                func.coalesce(func.sum(case((Entry.amount > 0, Entry.amount), else_=0)), 0),
                func.count(),
            ).where(and_(Entry.account_id == account_id, *_period(since, until)))
        )
    ).one()
    return {
        "opening_balance": opening,
        "closing_balance": opening if closing is None else closing,
        "total_debits": int(totals[0]),
        "total_credits": int(totals[1]),
        "entry_count": int(totals[2]),
    }


async def codes_by_id(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Account.id, Account.code).where(Account.id.in_(ids)))
    return {row.id: row.code for row in rows}
