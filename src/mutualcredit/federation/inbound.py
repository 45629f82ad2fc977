"""Receiving a transfer, at its destination or at a hub on its route.

Each delivery is decided in one transaction, under an advisory lock on its transfer id: the first
one decides (books it here, sends it on, or refuses it) and records the decision in a transfer
row 'in'; any later one answers with what was recorded, if it carries the same message. The
decision is final at the destination; at a hub it waits for the next network's (outbound.py
finishes it). models.Transfer draws the states.
"""

import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit import addresses
from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.federation import chains, outbound, protocol, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import PeerForbidden, TransferConflict
from mutualcredit.federation.peers import PeerContext
from mutualcredit.federation.repository import LinkRow
from mutualcredit.federation.schemas import TransferMessage
from mutualcredit.trades import repository as ledger
from mutualcredit.trades.errors import ledger_refusal

# Why a transfer is refused: a code the receipt carries, and its numbers.
Refusal = tuple[str, dict[str, Any]]


async def receive(
    fed: Federation, session: AsyncSession, ctx: PeerContext, msg: TransferMessage
) -> tuple[dict[str, Any], int | None]:
    """Decides an inbound transfer (first delivery) or answers what was decided (any later
    one). Returns the receipt and, at a hub, the id of the outbound row to deliver now."""
    await repository.lock_transfer_id(session, ctx.network_id, msg.transfer_id)
    digest = protocol.message_hash(msg)
    existing = await repository.find_transfer(session, ctx.network_id, msg.transfer_id, "in")
    if existing is not None:
        if existing.link_id != ctx.link.id:
            raise PeerForbidden("That transfer did not come over your link")
        if existing.request_hash != digest:
            raise TransferConflict(transfer_id=str(msg.transfer_id))
        return await chains.receipt(session, existing), None

    refusal = _refusal_of_link(ctx.link, msg) or _refusal_of_path(ctx, msg)
    network, account = addresses.split(msg.payee)
    out_row_id: int | None = None
    trade_id: uuid.UUID | None = None
    status = "refused"
    if refusal is None and network == ctx.network_code:
        trade_id, refusal = await _book_here(session, ctx, msg, account)
        status = "accepted" if refusal is None else "refused"
    elif refusal is None:
        if msg.kind != "federation":
            refusal = ("no_route", {"network": network})
        else:
            forwarded, refusal = await _forward(fed, session, ctx, msg, network)
            if forwarded is not None:
                trade_id, out_row_id = forwarded
                status = "forwarded"

    seq: int | None = None
    chain_hash: bytes | None = None
    if status == "accepted":
        seq, chain_hash = await chains.append(
            session, ctx.link.id, msg, ctx.link.peer_code, ctx.network_code
        )
    await repository.insert_inbound(
        session,
        network_id=ctx.network_id,
        link_id=ctx.link.id,
        msg=msg,
        request_hash=digest,
        status=status,
        trade_id=trade_id,
        refusal=refusal,
        seq=seq,
        chain_hash=chain_hash,
    )
    decided = await repository.find_transfer(session, ctx.network_id, msg.transfer_id, "in")
    assert decided is not None
    return await chains.receipt(session, decided), out_row_id


def _refusal_of_link(link: LinkRow, msg: TransferMessage) -> Refusal | None:
    """Why the link cannot carry the transfer now, if it cannot: expired, not active, at
    another rate than this side holds, or amounts that do not convert as the rate says."""
    rate = msg.rate
    if msg.expires_at <= datetime.now(UTC):
        return "transfer_expired", {"expires_at": protocol.iso(msg.expires_at)}
    if link.status != "active":
        return "link_not_active", {"link_status": link.status}
    if rate.version != link.rate_version or (
        Fraction(rate.num, rate.den) != Fraction(link.rate_den, link.rate_num)
    ):
        return "rate_mismatch", {"rate_version": link.rate_version}
    # A settlement in full states the receiver's whole link balance instead: _settlement_refusal
    # checks it exactly.
    if msg.kind != "settlement" and msg.amount_received != protocol.convert(
        msg.amount_sent, rate.num, rate.den
    ):
        return "amount_mismatch", {}
    if msg.amount_received < 1:
        return "amount_too_small", {}
    return None


def _refusal_of_path(ctx: PeerContext, msg: TransferMessage) -> Refusal | None:
    """A transfer that visited this network already is going round in circles: refused."""
    visited = protocol.path(msg, ctx.link.peer_code)
    if ctx.network_code in visited:
        return "route_loop", {"network": ctx.network_code, "path": visited}
    return None


def _refusal_of_ledger(result: ledger.LedgerResult) -> Refusal:
    """A ledger refusal as a transfer's: the code and numbers of its error (ledger_refusal)."""
    if result.problem_code is None:  # a replay where a new booking was due: not expected
        return "refused", {}
    problem = ledger_refusal(result)
    return problem.code, problem.fields


async def _book_here(
    session: AsyncSession, ctx: PeerContext, msg: TransferMessage, account: str
) -> tuple[uuid.UUID | None, Refusal | None]:
    """The last network: book link account -> payee, within this network's own limits. A
    settlement is booked only as its operator recorded it (settlements.py), and only as far
    as the link balance goes."""
    link = ctx.link
    if msg.kind == "federation" and await repository.is_reserved_account(
        session, ctx.network_id, account
    ):
        # A member of a peer pays members here, never one of this network's links.
        return None, ("account_reserved", {"account": account})
    if msg.kind == "settlement":
        refusal = await _settlement_refusal(session, link, msg, account)
        if refusal is not None:
            return None, refusal
    result = await ledger.create_trade(
        session,
        ledger.Booking(
            network_id=ctx.network_id,
            key=f"federation:{msg.transfer_id}",
            request_hash=protocol.message_hash(msg),
            payer=link.account_code,
            payee=account,
            amount=msg.amount_received,
            pending=False,
            expires_at=None,
            description=msg.description,
            external_ref=None,
            metadata={"transfer_id": str(msg.transfer_id), "from": msg.payer},
            actor=f"peer:{link.peer_code}",
            kind=msg.kind,
        ),
    )
    if result.outcome not in ("created", "replayed") or result.trade is None:
        return None, _refusal_of_ledger(result)
    if msg.kind == "settlement":
        await repository.mark_executed(session, link.id, msg.reference, msg.transfer_id)
    return uuid.UUID(result.trade["id"]), None


async def _settlement_refusal(
    session: AsyncSession, link: LinkRow, msg: TransferMessage, account: str
) -> Refusal | None:
    """Why the owing side refuses the peer's settlement transfer, if it does; each mistake
    has its own code, and none uses up the reference (models.Settlement):

    - `settlement_not_recorded`: this side has not recorded the reference (the wrong order),
      or cancelled it; `settlement_exists`: it is executed already;
    - `settlement_amount_mismatch`: what arrives is not the amount recorded here, or, for a
      settlement in full (what arrives is not the amount sent converted at the rate), the two
      amounts are not both sides' whole link balances, the peer's as this side's chains say;
    - `settlement_invalid`: more than this side owes, or not to its settlement account.

    A settlement in full is exact: this side's balance B_own (its units) and the peer's B_peer
    differ, at the rate, by the rounding remainder the chains hold; the transfer takes both to
    zero, so its own remainder is that one with the sign turned and the link's tracked
    remainder returns to zero. Nothing is created: it moves exactly what each ledger holds.
    """
    # The settlement's row first, then the link's accounts (the order settlements.py takes).
    recorded = await repository.get_settlement_for_update(session, link.id, msg.reference or "")
    if recorded is None or recorded.status in ("cancelled", "refused"):
        return "settlement_not_recorded", {"reference": msg.reference}
    if recorded.status != "agreed":
        return "settlement_exists", {
            "reference": msg.reference,
            "settlement_status": recorded.status,
        }
    if account != link.settlement_account_code:
        return "settlement_invalid", {"payee": msg.payee}
    balances = await repository.lock_balances(
        session, [link.account_id, link.settlement_account_id]
    )
    balance = balances[link.account_id]
    if recorded.amount != msg.amount_received:
        return "settlement_amount_mismatch", {
            "reference": msg.reference,
            "recorded": recorded.amount,
            "received": msg.amount_received,
        }
    if balance < msg.amount_received:
        return "settlement_invalid", {"link_balance": balance}
    rate = msg.rate
    if msg.amount_received != protocol.convert(msg.amount_sent, rate.num, rate.den):
        own, peer = await repository.chain_balances(session, link.id)
        if not (msg.amount_received == balance == own and msg.amount_sent == -peer):
            return "settlement_amount_mismatch", {
                "reference": msg.reference,
                "recorded": recorded.amount,
                "received": msg.amount_received,
                "link_balance": balance,
            }
    return None


async def _forward(
    fed: Federation, session: AsyncSession, ctx: PeerContext, msg: TransferMessage, network: str
) -> tuple[tuple[uuid.UUID, int] | None, Refusal | None]:
    """A hub: hold link-in -> link-out and queue the next hop, with a shorter expiry, naming
    this hub last in its `via`. Never to a network the transfer visited (route_loop: the
    route tables of two networks point at each other), nor past the most links a trade may
    cross (MUTUALCREDIT_FEDERATION_MAX_HOPS).
    Returns ((hold, outbox row), None), or (None, refusal)."""
    nxt = await repository.route(session, ctx.network_id, network)
    if nxt is None:
        return None, ("no_route", {"network": network})
    visited = protocol.path(msg, ctx.link.peer_code)
    if nxt.peer_code in visited:
        return None, ("route_loop", {"network": network, "next": nxt.peer_code, "path": visited})
    max_hops = fed.settings.federation_max_hops
    if len(visited) + 1 > max_hops:
        return None, ("too_many_hops", {"network": network, "max_hops": max_hops})
    if nxt.status != "active" or nxt.peer_status == "suspended":
        return None, ("link_not_active", {"link": nxt.peer_code})
    margin = timedelta(seconds=fed.settings.federation_hop_margin_seconds)
    expires_at = msg.expires_at - margin
    if expires_at <= datetime.now(UTC) + margin / 2:
        return None, ("expiry_too_short", {"expires_at": protocol.iso(msg.expires_at)})
    onward = protocol.convert(msg.amount_received, nxt.rate_num, nxt.rate_den)
    if onward < 1:
        return None, ("amount_too_small", {})
    if onward > MAX_AMOUNT:
        return None, ("amount_too_large", {})
    result = await ledger.create_trade(
        session,
        ledger.Booking(
            network_id=ctx.network_id,
            key=f"federation:{msg.transfer_id}",
            request_hash=protocol.message_hash(msg),
            payer=ctx.link.account_code,
            payee=nxt.account_code,
            amount=msg.amount_received,
            pending=True,
            expires_at=expires_at,
            description=msg.description,
            external_ref=None,
            metadata={"transfer_id": str(msg.transfer_id), "to": msg.payee},
            actor=f"peer:{ctx.link.peer_code}",
            kind="federation",
        ),
    )
    if result.outcome != "created" or result.trade is None:
        return None, _refusal_of_ledger(result)
    trade_id = uuid.UUID(result.trade["id"])
    out_id = await outbound.queue(
        session,
        network_id=ctx.network_id,
        transfer_id=msg.transfer_id,
        link=nxt,
        trade_id=trade_id,
        kind="federation",
        payer=msg.payer,
        payee=msg.payee,
        amount_sent=msg.amount_received,
        expires_at=expires_at,
        description=msg.description,
        reference=None,
        first_attempt_in=fed.settings.federation_timeout_seconds,
        via=(*visited[1:], ctx.network_code),
    )
    return (trade_id, out_id), None
