"""A member's cross-network trade, at its origin, and the transfers trades show.

The member pays over the same endpoint as a local trade (POST .../trades, with a payee
`network/account`); the ledger hands the trade over through its interface for it
(trades.cross_network.CrossNetwork), which `CrossNetworkTrades` implements: hold and queue in one
transaction, deliver once at once, and answer with where the trade stands.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit import addresses
from mutualcredit.accounts.errors import AccountReserved
from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.auth.models import Role
from mutualcredit.auth.permissions import require_writer
from mutualcredit.auth.service import Principal
from mutualcredit.db import unit_of_work
from mutualcredit.errors import Forbidden, ValidationProblem
from mutualcredit.federation import outbound, protocol, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    AmountTooLarge,
    AmountTooSmall,
    InvalidAddress,
    LinkNotActive,
    NoRoute,
    TransferRefused,
)
from mutualcredit.federation.links import link_to
from mutualcredit.federation.repository import TransferRow
from mutualcredit.hashing import request_hash
from mutualcredit.networks import service as networks
from mutualcredit.trades import repository as ledger
from mutualcredit.trades.cross_network import SentTrade
from mutualcredit.trades.errors import ledger_refusal
from mutualcredit.trades.schemas import Trade, TradeCreate, TransferView


class CrossNetworkTrades:
    """Federation's side of trades.cross_network.CrossNetwork, wired by create_app."""

    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    async def send(
        self, principal: Principal, network: str, key: str, data: TradeCreate
    ) -> SentTrade:
        """Accepted at once: the posted trade. Not decided yet: the pending trade, in flight
        (the outbox keeps delivering: read the trade, or retry with the same key, to learn
        it). Refused: transfer_refused. A retry with the same key answers with where the trade
        stands now."""
        async with unit_of_work(self.fed.sessionmaker) as session:
            net_id = await networks.network_id(session, principal, network)
            row_id, trade_id = await send_trade(self.fed, session, principal, net_id, key, data)
        if row_id is not None:
            await outbound.deliver(self.fed, row_id)
        async with self.fed.sessionmaker() as session:
            details = await ledger.get_details(session, trade_id)
            assert details is not None
            trade = Trade.model_validate(details)
            trade.transfer = await self.transfer_of_trade(session, trade_id)
        assert trade.transfer is not None
        if trade.status == "voided" and trade.transfer.resolution == "void":
            # This network's operator resolved the transfer (void) before any word of the peer:
            # refused, in the words a hub's resolution reaches the origin with, and so whatever
            # the peer's word later (it confirms the resolution, or disputes it).
            refusal = TransferRefused(
                f"{network}'s operator voided the transfer: {trade.transfer.resolution_reason}",
                trade_id=str(trade_id),
                transfer_id=str(trade.transfer.transfer_id),
                refused_by=network,
                remote_code="operator_resolved",
                remote_detail={"reason": trade.transfer.resolution_reason},
            )
            refusal.headers["Idempotent-Replayed"] = "true"
            raise refusal
        if trade.transfer.status == "refused":
            refusal = refusal_problem(trade_id, trade.transfer)
            if row_id is None:
                refusal.headers["Idempotent-Replayed"] = "true"
            raise refusal
        return SentTrade(
            trade, in_flight=trade.transfer.status == "in_flight", replayed=row_id is None
        )

    async def transfer_of_trade(
        self, session: AsyncSession, trade_id: uuid.UUID
    ) -> TransferView | None:
        transfer = await repository.transfer_of_trade(session, trade_id)
        return None if transfer is None else transfer_view(transfer)


async def send_trade(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    key: str,
    data: TradeCreate,
) -> tuple[int | None, uuid.UUID]:
    """Holds the amount toward the link and queues the transfer, in the request's transaction.
    Returns the outbox row to deliver now (None for a replay) and the trade id."""
    require_writer(principal)
    if principal.role is Role.member and data.payer != principal.account_code:
        raise Forbidden("A member key may only pay from its own account")
    network_code = await repository.network_code(session, network_id)
    peer_network, account = addresses.split(data.payee)
    if not peer_network or not account or peer_network == network_code:
        raise InvalidAddress(f"{data.payee!r}: pay a member of this network by its code alone")
    if data.pending or data.expires_at is not None:
        raise ValidationProblem(
            "pending: a cross-network trade is held and settled by the protocol: omit pending"
            " and expires_at"
        )
    # A key with an answer already is answered by the ledger (the trade or its refusal): the
    # route, the link's status and its rate, which can change, are checked only for a new one.
    known = await ledger.key_used(session, network_id, key)
    link = await repository.route(session, network_id, peer_network)
    if not known:
        if await repository.is_reserved_account(session, network_id, data.payer):
            raise AccountReserved(account=data.payer)
        if link is None:
            raise NoRoute(f"No link leads to {peer_network!r}", network=peer_network)
        if link.status != "active":
            raise LinkNotActive(
                f"The link to {link.peer_code} is {link.status}", peer=link.peer_code
            )
        if link.peer_status == "suspended":
            raise LinkNotActive(
                f"{link.peer_code} suspended its side of the link",
                peer=link.peer_code,
                peer_status=link.peer_status,
            )
        received = protocol.convert(data.amount, link.rate_num, link.rate_den)
        if received < 1:
            raise AmountTooSmall(rate=f"{link.rate_num}/{link.rate_den}")
        if received > MAX_AMOUNT:
            raise AmountTooLarge(
                f"At the rate {link.rate_num}/{link.rate_den} the amount is worth {received}"
                f" on the other side, more than {MAX_AMOUNT}",
                rate=f"{link.rate_num}/{link.rate_den}",
            )
    expires_at = datetime.now(UTC) + timedelta(seconds=fed.settings.federation_ttl_seconds)
    result = await ledger.create_trade(
        session,
        ledger.Booking(
            network_id=network_id,
            key=key,
            request_hash=request_hash("trade", data.model_dump(mode="json")),
            payer=data.payer,
            # A replay is answered before the payee is read: the link may be gone from the route.
            payee=link.account_code if link is not None else data.payee,
            amount=data.amount,
            pending=True,
            expires_at=expires_at,
            description=data.description,
            external_ref=data.external_ref,
            metadata={**data.metadata, "to": data.payee},
            actor=principal.actor,
            kind="federation",
        ),
    )
    if result.refused:
        # Recorded under the key (a retry must find it): committed with the refusal.
        raise ledger_refusal(result, commit=True)
    assert result.trade is not None
    if result.outcome == "replayed":
        return None, uuid.UUID(result.trade["id"])
    trade_id = uuid.UUID(result.trade["id"])
    assert link is not None  # a new trade was routed above
    row_id = await outbound.queue(
        session,
        network_id=network_id,
        transfer_id=uuid.uuid4(),
        link=link,
        trade_id=trade_id,
        kind="federation",
        payer=f"{network_code}/{data.payer}",
        payee=data.payee,
        amount_sent=data.amount,
        expires_at=expires_at,
        description=data.description,
        reference=None,
        first_attempt_in=fed.settings.federation_timeout_seconds + 1,
    )
    return row_id, trade_id


def transfer_view(transfer: TransferRow) -> TransferView:
    msg = transfer.message
    return TransferView(
        transfer_id=msg.transfer_id,
        direction=transfer.direction,
        peer=transfer.peer_code,
        kind=msg.kind,
        status={"prepared": "in_flight", "forwarded": "in_flight"}.get(
            transfer.status, transfer.status
        ),
        payer=msg.payer,
        payee=msg.payee,
        amount_sent=msg.amount_sent,
        amount_received=msg.amount_received,
        rate={"num": msg.rate.num, "den": msg.rate.den, "version": msg.rate.version},
        expires_at=msg.expires_at,
        refusal_code=transfer.refusal_code,
        refusal_detail=transfer.refusal_detail,
        seq=transfer.seq,
        attempts=transfer.attempts,
        last_error=transfer.last_error,
        reference=msg.reference,
        created_at=transfer.created_at,
        resolved_at=transfer.resolved_at,
        resolution=transfer.resolution,
        resolution_reason=transfer.resolution_reason,
        resolved_by=transfer.resolved_by,
        peer_decision=transfer.peer_decision,
    )


def refusal_problem(trade_id: uuid.UUID, transfer: TransferView) -> TransferRefused:
    detail = transfer.refusal_detail or {}
    return TransferRefused(
        f"{detail.get('refused_by', transfer.peer)} refused the trade: {transfer.refusal_code}",
        trade_id=str(trade_id),
        transfer_id=str(transfer.transfer_id),
        refused_by=detail.get("refused_by", transfer.peer),
        remote_code=transfer.refusal_code,
        remote_detail={k: v for k, v in detail.items() if k != "refused_by"},
    )


async def list_transfers(
    session: AsyncSession, network_id: uuid.UUID, peer: str, status: str | None, limit: int
) -> list[TransferView]:
    link = await link_to(session, network_id, peer)
    return [
        transfer_view(t) for t in await repository.list_transfers(session, link.id, status, limit)
    ]
