"""SQL only: calls of the ledger's SQL functions (migrations/sql/booking/) and trade queries.

Each write is one statement: the function locks, checks, and books inside PostgreSQL, so no
Python runs while an account row is locked.

Each ledger call has one text, in the driver's own parameter style ($1, $2, ...), with one list
of arguments: the booker runs it on a connection of the write path's asyncpg pool, everything
else on the connection of its session (in its transaction), through `exec_driver_sql`.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mutualcredit.accounts.models import Account
from mutualcredit.trades.models import Trade

CREATE_TRADE = """
    SELECT outcome, problem_code, problem_detail::text AS problem_detail, trade::text AS trade
    FROM mc_create_trade($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15,
                         $16, $17)
"""
# A batch of plain trades of one network (trades/booker.py): arrays of the first twelve
# arguments of mc_create_trade, booked in order under locks taken once for all of them.
CREATE_TRADES = """
    SELECT idx, outcome, problem_code, problem_detail::text AS problem_detail,
           trade::text AS trade
    FROM mc_create_trades($1, $2::text[], $3::bytea[], $4::text[], $5::text[], $6::bigint[],
                          $7::boolean[], $8::timestamptz[], $9::text[], $10::text[],
                          $11::jsonb[], $12::text[])
    ORDER BY idx
"""
RESOLVE_TRADE = """
    SELECT outcome, problem_code, problem_detail::text AS problem_detail, trade::text AS trade
    FROM mc_resolve_trade($1, $2, $3, $4, $5)
"""
EXPIRE_OVERDUE = "SELECT mc_expire_overdue($1)"
TRADE_JSON = "SELECT mc_trade_json($1)::text"


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    """One trade to book: the arguments of mc_create_trade. A plain trade between members
    needs the first twelve; the others say what kind of trade it is and how it is booked."""

    network_id: uuid.UUID
    key: str
    request_hash: bytes
    payer: str
    payee: str
    amount: int
    pending: bool
    expires_at: datetime | None
    description: str
    external_ref: str | None
    metadata: dict[str, Any]
    actor: str
    kind: str = "transfer"
    reverses_trade_id: uuid.UUID | None = None
    reason: str | None = None
    override: bool = False
    remember_refusal: bool = True

    def args(self) -> tuple[Any, ...]:
        """The arguments of CREATE_TRADE, in its order."""
        return (
            self.network_id,
            self.key,
            self.request_hash,
            self.payer,
            self.payee,
            self.amount,
            self.pending,
            self.expires_at,
            self.description,
            self.external_ref,
            orjson.dumps(self.metadata).decode(),
            self.actor,
            self.kind,
            self.reverses_trade_id,
            self.reason,
            self.override,
            self.remember_refusal,
        )


def batch_args(bookings: Sequence[Booking]) -> tuple[Any, ...]:
    """The arguments of CREATE_TRADES for plain trades of one network, in their order."""
    return (
        bookings[0].network_id,
        [b.key for b in bookings],
        [b.request_hash for b in bookings],
        [b.payer for b in bookings],
        [b.payee for b in bookings],
        [b.amount for b in bookings],
        [b.pending for b in bookings],
        [b.expires_at for b in bookings],
        [b.description for b in bookings],
        [b.external_ref for b in bookings],
        [orjson.dumps(b.metadata).decode() for b in bookings],
        [b.actor for b in bookings],
    )


@dataclass(frozen=True, slots=True)
class LedgerResult:
    """What a ledger function answered: `outcome` (for a new trade: created, replayed (the first
    answer to the key: its trade, or its refusal), rejected, invalid or conflict; for a
    resolution: posted, voided, expired or rejected), the refusal's code and numbers when there
    is one, and the trade as JSON when there is one. A refusal becomes an error in one place:
    trades.errors.ledger_refusal."""

    outcome: str
    problem_code: str | None
    problem_detail: dict[str, Any]
    trade: dict[str, Any] | None

    @property
    def refused(self) -> bool:
        """Refused now, or before under the same key (a replayed refusal), or invalid."""
        return self.problem_code is not None


def result_of(row: Row[Any] | Mapping[Any, Any]) -> LedgerResult:
    """From a SQLAlchemy row or an asyncpg record of a ledger function's result."""
    m: Mapping[Any, Any] = row._mapping if isinstance(row, Row) else row
    return LedgerResult(
        outcome=m["outcome"],
        problem_code=m["problem_code"],
        problem_detail=orjson.loads(m["problem_detail"]) if m["problem_detail"] else {},
        trade=orjson.loads(m["trade"]) if m["trade"] else None,
    )


async def _call(session: AsyncSession, sql: str, *args: Any) -> Row[Any]:
    """A ledger call on the session's connection, in its transaction."""
    connection = await session.connection()
    return (await connection.exec_driver_sql(sql, args)).one()


async def create_trade(session: AsyncSession, booking: Booking) -> LedgerResult:
    return result_of(await _call(session, CREATE_TRADE, *booking.args()))


async def resolve_trade(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    trade_id: uuid.UUID,
    action: str,
    amount: int | None,
    actor: str,
) -> LedgerResult:
    return result_of(
        await _call(session, RESOLVE_TRADE, network_id, trade_id, action, amount, actor)
    )


async def expire_overdue(session: AsyncSession, limit: int) -> int:
    return int((await _call(session, EXPIRE_OVERDUE, limit))[0])


async def get_details(session: AsyncSession, trade_id: uuid.UUID) -> dict[str, Any] | None:
    """The trade as the API shows it (the trade_details view, as JSON); None if there is none."""
    raw = (await _call(session, TRADE_JSON, trade_id))[0]
    return orjson.loads(raw) if raw else None


_FEES_OF = text(
    """
    SELECT fc.cause_trade_id, fc.trade_id, fr.code AS rule, fr.kind, fa.code AS account,
           fc.amount, fc.past_limit, fc.due_at
    FROM fee_charges fc
    JOIN fee_rules fr ON fr.id = fc.rule_id
    JOIN accounts fa ON fa.id = fc.account_id
    WHERE fc.cause_trade_id = ANY (:ids) OR fc.trade_id = ANY (:ids)
    ORDER BY fc.id
    """
)


@dataclass(frozen=True, slots=True)
class Fees:
    """The fee charges of some trades: the levies each paid (`levies`, by the trade levied on)
    and what each fee trade charges for (`charges`, by the fee trade), as trade_details shows
    them."""

    levies: dict[uuid.UUID, list[dict[str, Any]]]
    charges: dict[uuid.UUID, dict[str, Any]]


async def fees_of(session: AsyncSession, trade_ids: Sequence[uuid.UUID]) -> Fees:
    """One query for a page of trades: the `fees` and `fee` of trade_details, for a list read
    through the trades table rather than the view."""
    fees = Fees({}, {})
    if not trade_ids:
        return fees
    for row in await session.execute(_FEES_OF, {"ids": list(trade_ids)}):
        if row.cause_trade_id in trade_ids:
            fees.levies.setdefault(row.cause_trade_id, []).append(
                {
                    "rule": row.rule,
                    "account": row.account,
                    "amount": row.amount,
                    "trade_id": row.trade_id,
                    "past_limit": row.past_limit,
                }
            )
        if row.trade_id in trade_ids:
            fees.charges[row.trade_id] = {
                "rule": row.rule,
                "kind": row.kind,
                "cause_trade_id": row.cause_trade_id,
                "due_at": row.due_at,
            }
    return fees


_LOCK_KEYS = text(
    """
    SELECT pg_advisory_xact_lock(k)
    FROM (SELECT DISTINCT hashtextextended(CAST(:n AS text) || '/' || key, 0) AS k
          FROM unnest(CAST(:keys AS text[])) AS key ORDER BY 1) AS keys
    """
)
_LOCK_ACCOUNTS = text(
    "SELECT 1 FROM accounts WHERE network_id = :n AND code = ANY (:codes) ORDER BY id FOR UPDATE"
)


async def lock_for_bookings(
    session: AsyncSession, network_id: uuid.UUID, keys: Sequence[str], codes: Sequence[str]
) -> None:
    """Takes, in the ledger's global lock order (the keys' advisory locks sorted, then the
    accounts by id; mc_create_trades does the same), every lock that several bookings of one
    transaction will take one after another, so that they cannot deadlock with a concurrent
    writer that locks some of the same accounts."""
    await session.execute(_LOCK_KEYS, {"n": str(network_id), "keys": list(keys)})
    await session.execute(_LOCK_ACCOUNTS, {"n": network_id, "codes": list(codes)})


_KEY_USED = text(
    "SELECT EXISTS (SELECT 1 FROM trades WHERE network_id = :n AND key = :k)"
    " OR EXISTS (SELECT 1 FROM trade_rejections WHERE network_id = :n AND key = :k)"
)


async def key_used(session: AsyncSession, network_id: uuid.UUID, key: str) -> bool:
    """Whether the key has an answer in the network: a trade booked, or a refusal recorded. A
    retry with it is answered by the ledger (replayed or conflict) before anything else."""
    return bool(await session.scalar(_KEY_USED, {"n": network_id, "k": key}))


@dataclass(frozen=True, slots=True)
class Parties:
    payer: str
    payee: str
    kind: str


async def get_parties(
    session: AsyncSession, network_id: uuid.UUID, trade_id: uuid.UUID
) -> Parties | None:
    """Codes of the payer and payee of a trade of the network, and its kind; or None."""
    payer = Account.__table__.alias("payer")
    payee = Account.__table__.alias("payee")
    row = (
        await session.execute(
            select(payer.c.code, payee.c.code, Trade.kind)
            .select_from(Trade)
            .join(payer, payer.c.id == Trade.payer_id)
            .join(payee, payee.c.id == Trade.payee_id)
            .where(Trade.network_id == network_id, Trade.id == trade_id)
        )
    ).one_or_none()
    return Parties(row[0], row[1], row[2]) if row is not None else None


async def list_trades(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    account_id: uuid.UUID | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A network's trades in creation order (keyset on created_at, id)."""
    payer = Account.__table__.alias("payer")
    payee = Account.__table__.alias("payee")
    reversal = aliased(Trade)
    reversed_by = (
        select(reversal.id).where(reversal.reverses_trade_id == Trade.id).scalar_subquery()
    )
    query = (
        select(
            Trade,
            payer.c.code.label("payer_code"),
            payee.c.code.label("payee_code"),
            reversed_by.label("reversed_by"),
        )
        .join(payer, payer.c.id == Trade.payer_id)
        .join(payee, payee.c.id == Trade.payee_id)
        .where(Trade.network_id == network_id)
    )
    if account_id is not None:
        query = query.where((Trade.payer_id == account_id) | (Trade.payee_id == account_id))
    if status is not None:
        query = query.where(Trade.status == status)
    if since is not None:
        query = query.where(Trade.created_at >= since)
    if until is not None:
        query = query.where(Trade.created_at < until)
    if after is not None:
        query = query.where(tuple_(Trade.created_at, Trade.id) > after)
    rows = (await session.execute(query.order_by(Trade.created_at, Trade.id).limit(limit))).all()
    return [
        {
            "id": t.id,
            "key": t.key,
            "payer": payer_code,
            "payee": payee_code,
            "amount": t.amount,
            "status": t.status,
            "posted_amount": t.posted_amount,
            "description": t.description,
            "external_ref": t.external_ref,
            "metadata": t.metadata_,
            "reverses_trade_id": t.reverses_trade_id,
            "reversed_by": reversed_by,
            "kind": t.kind,
            "reason": t.reason,
            "limit_override": t.limit_override,
            "created_by": t.created_by,
            "expires_at": t.expires_at,
            "created_at": t.created_at,
            "resolved_at": t.resolved_at,
        }
        for t, payer_code, payee_code, reversed_by in rows
    ]
