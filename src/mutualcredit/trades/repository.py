"""SQL only: calls of the ledger's SQL functions (migrations/sql/booking/) and trade queries.

Each write is one statement: the function locks, checks, and books inside PostgreSQL, so no
Python runs while an account row is locked.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mutualcredit.accounts.models import Account
from mutualcredit.trades.models import Trade

_CREATE = text(
    """
    SELECT outcome, problem_code, problem_detail::text AS problem_detail, trade::text AS trade
    FROM mc_create_trade(:network_id, :key, :request_hash, :payer, :payee, :amount,
                         :pending, :expires_at, :description, :external_ref,
                         CAST(:metadata AS jsonb), :actor, :kind, :reverses_trade_id, :reason,
                         :override, :remember_refusal)
    """
)
_RESOLVE = text(
    """
    SELECT outcome, problem_code, problem_detail::text AS problem_detail, trade::text AS trade
    FROM mc_resolve_trade(:network_id, :trade_id, :action, :amount, :actor)
    """
)
_EXPIRE = text("SELECT mc_expire_overdue(:limit)")
_DETAILS = text("SELECT mc_trade_json(:trade_id)::text")


@dataclass(frozen=True, slots=True)
class LedgerResult:
    outcome: str
    problem_code: str | None
    problem_detail: dict[str, Any]
    trade: dict[str, Any] | None


def result_of(row: Row[Any] | Mapping[Any, Any]) -> LedgerResult:
    """From a SQLAlchemy row or an asyncpg record of a ledger function's result."""
    m: Mapping[Any, Any] = row._mapping if isinstance(row, Row) else row
    return LedgerResult(
        outcome=m["outcome"],
        problem_code=m["problem_code"],
        problem_detail=orjson.loads(m["problem_detail"]) if m["problem_detail"] else {},
        trade=orjson.loads(m["trade"]) if m["trade"] else None,
    )


async def create_trade(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    key: str,
    request_hash: bytes,
    payer: str,
    payee: str,
    amount: int,
    pending: bool,
    expires_at: datetime | None,
    description: str,
    external_ref: str | None,
    metadata: dict[str, Any],
    actor: str,
    kind: str = "transfer",
    reverses_trade_id: uuid.UUID | None = None,
    reason: str | None = None,
    override: bool = False,
    remember_refusal: bool = True,
) -> LedgerResult:
    row = (
        await session.execute(
            _CREATE,
            {
                "network_id": network_id,
                "key": key,
                "request_hash": request_hash,
                "payer": payer,
                "payee": payee,
                "amount": amount,
                "pending": pending,
                "expires_at": expires_at,
                "description": description,
                "external_ref": external_ref,
                "metadata": orjson.dumps(metadata).decode(),
                "actor": actor,
                "kind": kind,
                "reverses_trade_id": reverses_trade_id,
                "reason": reason,
                "override": override,
                "remember_refusal": remember_refusal,
            },
        )
    ).one()
    return result_of(row)


async def resolve_trade(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    trade_id: uuid.UUID,
    action: str,
    amount: int | None,
    actor: str,
) -> LedgerResult:
    row = (
        await session.execute(
            _RESOLVE,
            {
                "network_id": network_id,
                "trade_id": trade_id,
                "action": action,
                "amount": amount,
                "actor": actor,
            },
        )
    ).one()
    return result_of(row)


async def expire_overdue(session: AsyncSession, limit: int) -> int:
    return int((await session.execute(_EXPIRE, {"limit": limit})).scalar_one())


async def get_details(session: AsyncSession, trade_id: uuid.UUID) -> dict[str, Any] | None:
    raw = (await session.execute(_DETAILS, {"trade_id": trade_id})).scalar_one_or_none()
    return orjson.loads(raw) if raw else None


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
