"""Trades: create (direct or pending), post or void a hold, read, list, expire overdue holds.

Who may do what (`Principal` roles):
- create: a member pays only from its own account; an operator may pay from any account of its
  network (entry on a member's behalf);
- post a hold: its payer, its payee, or an operator. Void a hold: its payee or an operator. A
  hold is the payer's promise to the payee, so the payer cannot withdraw it alone; it ends by
  post, void, or expiry;
- read a trade: its payer, its payee, or an operator. Another member sees 404.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts import service as accounts
from mutualcredit.auth.models import Role
from mutualcredit.auth.permissions import require_operator, require_writer
from mutualcredit.auth.service import Principal
from mutualcredit.errors import Forbidden, ValidationProblem
from mutualcredit.hashing import request_hash
from mutualcredit.observability import TRADES
from mutualcredit.pagination import after_time_and_id, page
from mutualcredit.trades import repository
from mutualcredit.trades.booker import Booker, TradeRequest
from mutualcredit.trades.cross_network import CrossNetwork
from mutualcredit.trades.errors import (
    AmountOutOfRange,
    SameAccount,
    TradeAlreadyReversed,
    TradeFederated,
    TradeNotFound,
    TradeNotPosted,
    TradeNotReversible,
    ledger_refusal,
)
from mutualcredit.trades.models import TradeKind, TradeStatus
from mutualcredit.trades.repository import Booking
from mutualcredit.trades.schemas import Trade, TradeCreate, TradePost, TradeReverse

NUMERIC_VALUE_OUT_OF_RANGE = "22003"
# Cross-network holds end as their destination decides, never by expiry or by hand.
FEDERATED = (TradeKind.federation, TradeKind.settlement)


@dataclass(frozen=True, slots=True)
class Created:
    trade: Trade
    replayed: bool


def _sqlstate(exc: Exception) -> str | None:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _as_created(trade: dict[str, Any]) -> dict[str, Any]:
    """The trade as its creation response showed it. A replay answers with the original
    response; a trade created pending (it has an expiry) may have been resolved since."""
    if trade["expires_at"] is None:
        return trade
    return {**trade, "status": "pending", "posted_amount": None, "resolved_at": None}


def effective(trade: dict[str, Any], now: datetime) -> Trade:
    """A read shows an overdue hold as expired even before the sweeper has released it: no
    post can succeed any more, and the next write on it records the expiry."""
    model = Trade.model_validate(trade)
    if (
        model.kind not in FEDERATED
        and model.status is TradeStatus.pending
        and model.expires_at is not None
        and model.expires_at <= now
    ):
        return model.model_copy(update={"status": TradeStatus.expired})
    return model


async def create_trade(
    booker: Booker,
    principal: Principal,
    network_id: uuid.UUID,
    key: str,
    data: TradeCreate,
    *,
    default_ttl: timedelta,
) -> Created:
    require_writer(principal)
    if principal.role is Role.member and data.payer != principal.account_code:
        raise Forbidden("A member key may only pay from its own account")
    if data.payer == data.payee:
        raise SameAccount()
    now = datetime.now(UTC)
    expires_at = data.expires_at
    if not data.pending and expires_at is not None:
        raise ValidationProblem("expires_at: only a pending trade expires")
    if data.pending and expires_at is None:
        expires_at = now + default_ttl
    # Whether a hold's expiry is still ahead is the ledger's to say, once it knows the key is
    # new: a retry of a hold booked before its expiry passed gets its first answer.

    fingerprint = request_hash("trade", data.model_dump(mode="json"))
    try:
        result = await booker.book(
            TradeRequest(
                network_id=network_id,
                key=key,
                request_hash=fingerprint,
                payer=data.payer,
                payee=data.payee,
                amount=data.amount,
                pending=data.pending,
                expires_at=expires_at,
                description=data.description,
                external_ref=data.external_ref,
                metadata=data.metadata,
                actor=principal.actor,
            )
        )
    except (DBAPIError, asyncpg.PostgresError) as exc:
        if _sqlstate(exc) == NUMERIC_VALUE_OUT_OF_RANGE:
            raise AmountOutOfRange() from exc
        raise

    TRADES.labels(result.outcome, result.problem_code or "").inc()
    if result.refused:
        # The booking committed already (the refusal is recorded under its key); nothing to do.
        raise ledger_refusal(result, commit=False)
    assert result.trade is not None
    if result.outcome == "replayed":
        return Created(Trade.model_validate(_as_created(result.trade)), replayed=True)
    return Created(Trade.model_validate(result.trade), replayed=False)


async def reverse_trade(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    trade_id: uuid.UUID,
    data: TradeReverse,
) -> Created:
    """Books the mirror of a posted trade, linked to it: history is corrected, never edited.

    Keyed by the trade it reverses, so a retry is always safe and a trade is reversed at most
    once (also a unique index). A refusal is not remembered: an operator who was refused for a
    limit may try again with an explicit, recorded override. The trade's levies are reversed
    with it, or none of them is (one transaction).
    """
    require_operator(principal)
    await _trade_for(session, principal, network_id, trade_id)
    original = await repository.get_details(session, trade_id)
    assert original is not None
    if original["kind"] == "reversal":
        raise TradeNotReversible(trade_id=str(trade_id))
    if original["kind"] in ("federation", "settlement"):
        # Booked by the protocol, with its twin in the peer's ledger: a reversal here alone
        # would leave the link disagreeing with the peer. A mistake is corrected by a new trade
        # back across (README, "Correcting a cross-network trade").
        raise TradeFederated(
            "A trade the federation protocol booked is not reversed on one side: pay it back "
            "across the link instead",
            trade_id=str(trade_id),
        )
    if original["status"] != "posted":
        raise TradeNotPosted(
            f"The trade is {original['status']}: only a posted trade is reversed",
            trade_id=str(trade_id),
            trade_status=original["status"],
        )
    # The levies the trade paid are reversed with it, in this transaction: each one's own
    # reversal (its key `reversal:<fee trade id>`), but for one already reversed on its own (a
    # refund). A fee trade is reversed alone, as any trade.
    levies = []
    for fee in original["fees"]:
        levy = await repository.get_details(session, uuid.UUID(fee["trade_id"]))
        assert levy is not None
        if levy["reversed_by"] is None:
            levies.append(levy)
    if levies:
        await repository.lock_for_bookings(
            session,
            network_id,
            [f"reversal:{t['id']}" for t in (original, *levies)],
            sorted({code for t in (original, *levies) for code in (t["payer"], t["payee"])}),
        )
    reversal = await _reverse(session, principal, network_id, original, data)
    for levy in levies:
        await _reverse(session, principal, network_id, levy, data)
    return reversal


async def _reverse(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    original: dict[str, Any],
    data: TradeReverse,
) -> Created:
    trade_id = original["id"]
    result = await repository.create_trade(
        session,
        Booking(
            network_id=network_id,
            key=f"reversal:{trade_id}",
            request_hash=request_hash("reversal", data.model_dump(mode="json")),
            payer=original["payee"],
            payee=original["payer"],
            amount=original["posted_amount"],
            pending=False,
            expires_at=None,
            description=f"Reversal of trade {trade_id}",
            external_ref=original["external_ref"],
            metadata={},
            actor=principal.actor,
            kind="reversal",
            reverses_trade_id=uuid.UUID(str(trade_id)),
            reason=data.reason,
            override=data.override_limits,
            remember_refusal=False,
        ),
    )
    if not result.refused:
        assert result.trade is not None
        return Created(Trade.model_validate(result.trade), replayed=result.outcome == "replayed")
    if result.outcome == "conflict":
        raise TradeAlreadyReversed(trade_id=str(trade_id), reversed_by=original["reversed_by"])
    raise ledger_refusal(result, commit=False)


async def _trade_for(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, trade_id: uuid.UUID
) -> repository.Parties:
    parties = await repository.get_parties(session, network_id, trade_id)
    if parties is None or (
        principal.role is Role.member
        and principal.account_code not in (parties.payer, parties.payee)
    ):
        raise TradeNotFound(f"No trade {trade_id} here", trade_id=str(trade_id))
    return parties


async def resolve_trade(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    trade_id: uuid.UUID,
    action: str,
    data: TradePost | None = None,
) -> Trade:
    require_writer(principal)
    parties = await _trade_for(session, principal, network_id, trade_id)
    if parties.kind in FEDERATED:
        raise TradeFederated(trade_id=str(trade_id))
    if (
        principal.role is Role.member
        and action == "void"
        and principal.account_code != parties.payee
    ):
        raise Forbidden("Only the payee or an operator may void a hold")
    result = await repository.resolve_trade(
        session,
        network_id=network_id,
        trade_id=trade_id,
        action=action,
        amount=data.amount if data is not None else None,
        actor=principal.actor,
    )
    if result.outcome in ("posted", "voided"):
        assert result.trade is not None
        return Trade.model_validate(result.trade)
    # 'expired' changed the ledger (the hold is released): commit that, then refuse.
    raise ledger_refusal(result, commit=result.outcome == "expired")


async def get_trade(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    trade_id: uuid.UUID,
    cross_network: CrossNetwork,
) -> Trade:
    await _trade_for(session, principal, network_id, trade_id)
    details = await repository.get_details(session, trade_id)
    assert details is not None
    trade = effective(details, datetime.now(UTC))
    if trade.kind in FEDERATED:
        trade.transfer = await cross_network.transfer_of_trade(session, trade_id)
    return trade


async def list_trades(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    *,
    account: str | None,
    status: TradeStatus | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Trade], str | None]:
    if principal.role is Role.member:
        if account is not None and account != principal.account_code:
            raise Forbidden("A member key may only list its own account's trades")
        account = principal.account_code
    account_id = None
    if account is not None:
        account_id = (await accounts.get_account(session, network_id, account)).id
    after = after_time_and_id(cursor, uuid.UUID)
    rows = await repository.list_trades(
        session,
        network_id,
        account_id=account_id,
        status=status.value if status is not None else None,
        since=since,
        until=until,
        after=after,
        limit=limit + 1,
    )
    rows, next_cursor = page(rows, limit, lambda t: (t["created_at"].isoformat(), str(t["id"])))
    fees = await repository.fees_of(session, [row["id"] for row in rows])
    now = datetime.now(UTC)
    return [
        effective(
            {
                **row,
                "fees": fees.levies.get(row["id"], []),
                "fee": fees.charges.get(row["id"]) if row["kind"] == TradeKind.fee else None,
            },
            now,
        )
        for row in rows
    ], next_cursor


async def expire_overdue(session: AsyncSession, limit: int = 100) -> int:
    return await repository.expire_overdue(session, limit)
