"""Settlements: link balances paid outside the ledger, recorded by both operators.

Both operators record the settlement under the same reference, each in its own units. The side
that owes (a positive link balance) only records it; the side that is owed (a negative one)
records it and executes it: a hold `settlement.<peer>` -> `link.<peer>`, sent as a transfer of
kind 'settlement', which the owing side books only if it recorded the same reference and amount
(inbound.py). models.Settlement draws the states.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.auth.permissions import require_operator
from mutualcredit.auth.service import Principal
from mutualcredit.federation import outbound, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    LinkNotActive,
    SettlementExists,
    SettlementInvalid,
)
from mutualcredit.federation.links import SETTLEMENT_PREFIX, link_to
from mutualcredit.federation.repository import SettlementRow
from mutualcredit.federation.schemas import SettlementCreate, SettlementView
from mutualcredit.hashing import request_hash
from mutualcredit.trades import repository as ledger
from mutualcredit.trades.errors import ledger_refusal


async def record_settlement(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    data: SettlementCreate,
) -> tuple[SettlementView, int | None]:
    """Records a settlement agreed with the peer (paid outside the ledger). The side that is
    owed (its link account is negative) executes it as a transfer; the side that owes only
    records it, and accepts the transfer when it comes. Returns the outbox row to deliver."""
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    # The settlement's row first, then its accounts: the order the peer's settlement transfer
    # takes them in when it arrives (inbound._book_here).
    earlier = await repository.get_settlement_for_update(session, link.id, data.reference)
    # Both accounts the settlement books, locked in id order as every writer does.
    balances = await repository.lock_balances(
        session, [link.account_id, link.settlement_account_id]
    )
    balance = balances[link.account_id]
    if (balance > 0 and data.amount > balance) or balance == 0:
        raise SettlementInvalid(
            f"The link balance is {balance}: a settlement of {data.amount} would not move it "
            "toward zero",
            link_balance=balance,
        )
    executes = balance < 0
    if executes and data.amount > -balance:
        raise SettlementInvalid(
            f"The peer owes {-balance}: a settlement of {data.amount} is more",
            link_balance=balance,
        )
    if executes and link.status != "active":
        raise LinkNotActive(f"The link to {peer} is {link.status}", peer=peer)
    if earlier is not None:
        # A settlement the peer refused (say, because its operator had not recorded it yet)
        # may be sent again under the same reference, for the same amount: its refused
        # transfer stays in the link's history, and a new transfer carries it.
        if not (executes and earlier.status == "refused" and earlier.amount == data.amount):
            raise SettlementExists(reference=data.reference)
        settlement_id = earlier.id
        await repository.set_settlement_status(session, settlement_id, "agreed")
    else:
        try:
            async with session.begin_nested():
                settlement_id = await repository.insert_settlement(
                    session, link.id, data.reference, data.amount, principal.actor
                )
        except IntegrityError as exc:  # recorded concurrently under the same reference
            raise SettlementExists(reference=data.reference) from exc
    row_id = None
    if executes:
        transfer_id = uuid.uuid4()
        expires_at = datetime.now(UTC) + timedelta(seconds=fed.settings.federation_ttl_seconds)
        result = await ledger.create_trade(
            session,
            ledger.Booking(
                network_id=network_id,
                key=f"settlement:{transfer_id}",
                request_hash=request_hash("settlement", data.model_dump(mode="json")),
                payer=link.settlement_account_code,
                payee=link.account_code,
                amount=data.amount,
                pending=True,
                expires_at=expires_at,
                description=f"Settlement {data.reference} with {peer}",
                external_ref=data.reference,
                metadata={},
                actor=principal.actor,
                kind="settlement",
            ),
        )
        if result.outcome != "created" or result.trade is None:
            raise ledger_refusal(result)
        row_id = await outbound.queue(
            session,
            network_id=network_id,
            transfer_id=transfer_id,
            link=link,
            trade_id=uuid.UUID(result.trade["id"]),
            kind="settlement",
            payer=f"{link.network_code}/{link.settlement_account_code}",
            payee=f"{peer}/{SETTLEMENT_PREFIX}{link.network_code}",
            amount_sent=data.amount,
            expires_at=expires_at,
            description=f"Settlement {data.reference}",
            reference=data.reference,
            first_attempt_in=fed.settings.federation_timeout_seconds + 1,
        )
        await repository.set_settlement_status(session, settlement_id, "sent", transfer_id)
    return _view(await repository.get_settlement(session, settlement_id)), row_id


def _view(settlement: SettlementRow) -> SettlementView:
    return SettlementView(
        id=settlement.id,
        peer=settlement.peer_code,
        reference=settlement.reference,
        amount=settlement.amount,
        status=settlement.status,
        transfer_id=settlement.transfer_id,
        created_by=settlement.created_by,
        created_at=settlement.created_at,
    )


async def list_settlements(
    session: AsyncSession, network_id: uuid.UUID, peer: str
) -> list[SettlementView]:
    link = await link_to(session, network_id, peer)
    return [_view(s) for s in await repository.list_settlements(session, link.id)]
