"""Settlements: link balances paid outside the ledger, recorded by both operators.

Both operators record the settlement under the same reference, each in its own units. The side
that owes (a positive link balance) only records it; the side that is owed (a negative one)
records it and executes it: a hold `settlement.<peer>` -> `link.<peer>`, sent as a transfer of
kind 'settlement', which the owing side books only if it recorded the same reference and the
amount that arrives (inbound.py). The executing side delivers it at once and answers with the
peer's decision: 201 executed, 409 with the peer's code, or 202 sent while the peer gives no
answer (the outbox finishes it). models.Settlement draws the states.

Settling in full. Each transfer's conversion rounds down and leaves the remainder with the
sending side, so the two link balances drift apart by the link's tracked remainder: one side
can be left owing 2 while the other is owed 0, and no settlement at the rate reaches zero. A
settlement of this side's whole link balance is therefore in full: its transfer sends the whole
balance and states, as what arrives, the owing side's whole balance as this side's chains of
accepted transfers say (not the amount converted at the rate). The owing side books it only if
that is its whole balance and the amount sent is the whole of the peer's, as its own chains
say: both balances end at exactly zero, and the transfer's own remainder cancels the tracked
one (the mirror holds at zero). A side whose balance is zero while the peer's is not settles in
full with amount 0: its transfer sends nothing and holds nothing. No value is created: each
side books exactly what its own ledger holds.

A cancelled settlement is this side's record only: the peer's operator cancels its own.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.context import act_as, explain
from mutualcredit.auth.permissions import require_operator
from mutualcredit.auth.service import Principal
from mutualcredit.db import unit_of_work
from mutualcredit.errors import ProblemError
from mutualcredit.federation import outbound, protocol, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    LinkNotActive,
    SettlementAmountMismatch,
    SettlementExists,
    SettlementInvalid,
    SettlementNotCancellable,
    SettlementNotFound,
    SettlementNotRecorded,
    SettlementRefused,
)
from mutualcredit.federation.links import SETTLEMENT_PREFIX, link_to
from mutualcredit.federation.repository import LinkRow, SettlementRow
from mutualcredit.federation.schemas import SettlementCancel, SettlementCreate, SettlementView
from mutualcredit.hashing import request_hash
from mutualcredit.idempotency import service as idempotency
from mutualcredit.networks import service as networks
from mutualcredit.trades import repository as ledger
from mutualcredit.trades.errors import ledger_refusal

# The peer's refusals of a settlement transfer that have a problem of their own here.
_REFUSALS: dict[str, type[ProblemError]] = {
    "settlement_not_recorded": SettlementNotRecorded,
    "settlement_amount_mismatch": SettlementAmountMismatch,
    "settlement_invalid": SettlementInvalid,
    "settlement_exists": SettlementExists,
}


async def settle(
    fed: Federation,
    principal: Principal,
    network: str,
    peer: str,
    key: str | None,
    data: SettlementCreate,
) -> tuple[int, dict[str, Any], bool]:
    """Records a settlement (at most once per Idempotency-Key) and, on the side that executes
    it, delivers its transfer at once, after the commit. Answers where it stands now, a retry
    too: 201 agreed or executed, 202 sent (the peer gave no answer yet), or the peer's refusal
    as a 409 problem. Returns the status, the body and whether it is a replay."""
    row_ids: list[int] = []
    async with unit_of_work(fed.sessionmaker) as session:
        await act_as(session, principal.actor)
        net_id = await networks.network_id(session, principal, network)

        async def write() -> SettlementView:
            view, row_id = await record_settlement(fed, session, principal, net_id, peer, data)
            if row_id is not None:
                row_ids.append(row_id)
            return view

        outcome = await idempotency.respond(
            session,
            api_key_id=principal.key_uuid,
            key=key,
            scope=f"settlement:{network}:{peer}",
            payload=data.model_dump(mode="json"),
            status_code=201,
            write=write,
        )
    for row_id in row_ids:
        await outbound.deliver(fed, row_id)
    async with fed.sessionmaker() as session:
        settlement = await repository.get_settlement(session, uuid.UUID(outcome.body["id"]))
        stored = outcome.body.get("transfer_id")
        if outcome.replayed and (
            str(settlement.transfer_id) != str(stored)
            or settlement.amount != outcome.body["amount"]
        ):
            # Recorded again under its reference since this key's request: the key's answer is
            # about what this request recorded, never about the later recording.
            return await _answer_of_earlier(session, net_id, settlement, outcome.body)
        view = _view(settlement)
        if settlement.status == "refused":
            problem = await _refusal(session, net_id, settlement)
            if outcome.replayed:
                problem.headers["Idempotent-Replayed"] = "true"
            raise problem
    status = 202 if settlement.status == "sent" else 201
    return status, view.model_dump(mode="json"), outcome.replayed


async def _answer_of_earlier(
    session: AsyncSession, network_id: uuid.UUID, settlement: SettlementRow, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """The answer to a replayed request whose recording was refused or cancelled and recorded
    again since: from its own transfer (refused: the same refusal), else its stored answer."""
    if body.get("transfer_id") is not None:
        problem = await _refusal(session, network_id, settlement, uuid.UUID(body["transfer_id"]))
        problem.headers["Idempotent-Replayed"] = "true"
        raise problem
    return 201, body, True


async def _refusal(
    session: AsyncSession,
    network_id: uuid.UUID,
    settlement: SettlementRow,
    transfer_id: uuid.UUID | None = None,
) -> ProblemError:
    """The peer's refusal of the settlement's transfer (or of `transfer_id`, an earlier one
    under the same reference), as this side's problem: the peer's own code where it is a
    settlement's mistake, `settlement_refused` otherwise."""
    transfer_id = transfer_id or settlement.transfer_id
    assert transfer_id is not None
    transfer = await repository.find_transfer(session, network_id, transfer_id, "out")
    assert transfer is not None
    code = transfer.refusal_code or "refused"
    detail = dict(transfer.refusal_detail or {})
    refused_by = detail.pop("refused_by", settlement.peer_code)
    fields = {
        **detail,
        "reference": settlement.reference,
        "refused_by": refused_by,
        "transfer_id": str(transfer_id),
    }
    message = f"{refused_by} refused settlement {settlement.reference}: {code}"
    problem_class = _REFUSALS.get(code)
    if problem_class is None:
        return SettlementRefused(message, remote_code=code, **fields)
    return problem_class(message, **fields)


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
    records it, and accepts the transfer when it comes. A refused or cancelled settlement is
    recorded again under its reference, with any amount. Returns the outbox row to deliver."""
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    # The settlement's row first, then its accounts: the order the peer's settlement transfer
    # takes them in when it arrives (inbound._settlement_refusal).
    earlier = await repository.get_settlement_for_update(session, link.id, data.reference)
    # Both accounts the settlement books, locked in id order as every writer does.
    balances = await repository.lock_balances(
        session, [link.account_id, link.settlement_account_id]
    )
    balance = balances[link.account_id]
    received = await _what_arrives(session, link, balance, data.amount)
    executes = received is not None
    if executes and link.status != "active":
        raise LinkNotActive(f"The link to {peer} is {link.status}", peer=peer)
    if earlier is None:
        try:
            async with session.begin_nested():
                settlement_id = await repository.insert_settlement(
                    session, link.id, data.reference, data.amount, principal.actor
                )
        except IntegrityError as exc:  # recorded concurrently under the same reference
            raise SettlementExists(reference=data.reference) from exc
    elif earlier.status in ("refused", "cancelled"):
        # A mistake does not use up the reference: its refused transfer, if any, stays in the
        # link's history, and a new transfer carries it.
        settlement_id = earlier.id
        await repository.record_again(session, settlement_id, data.amount)
    else:
        raise SettlementExists(reference=data.reference, settlement_status=earlier.status)
    row_id = None
    if received is not None:
        row_id = await _execute(fed, session, principal, link, data, received)
        transfer_id = (await repository.get_transfer(session, row_id)).message.transfer_id
        await repository.set_settlement_status(session, settlement_id, "sent", transfer_id)
    return _view(await repository.get_settlement(session, settlement_id)), row_id


async def _what_arrives(
    session: AsyncSession, link: LinkRow, balance: int, amount: int
) -> int | None:
    """Whether this side executes the settlement and, if it does, what arrives at the peer
    (None: the owing side, which only records). The amount at the rate, or for a settlement
    in full (this side's whole balance), the peer's whole balance as this side's chains say.
    Refused with `settlement_invalid` when it would not move the balance toward zero."""
    if balance > 0:
        if not 1 <= amount <= balance:
            raise SettlementInvalid(
                f"This side owes {balance}: a settlement of {amount} would not move the link"
                " balance toward zero",
                link_balance=balance,
            )
        return None
    if amount > -balance:
        raise SettlementInvalid(
            f"The peer owes {-balance}: a settlement of {amount} is more", link_balance=balance
        )
    if amount < -balance:
        if amount < 1:
            raise SettlementInvalid(
                "A settlement of 0 is only the settlement in full of a zero balance",
                link_balance=balance,
            )
        return protocol.convert(amount, link.rate_num, link.rate_den)
    _, peer_balance = await repository.chain_balances(session, link.id)
    if peer_balance < 1:
        raise SettlementInvalid(
            f"The link balance is {balance} and the peer's is {peer_balance}: nothing to settle"
            " in full",
            link_balance=balance,
            peer_balance=peer_balance,
        )
    return peer_balance


async def _execute(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    link: LinkRow,
    data: SettlementCreate,
    received: int,
) -> int:
    """Holds the amount settlement.<peer> -> link.<peer> (nothing for a settlement of nothing)
    and queues the settlement transfer. Returns its outbox row."""
    transfer_id = uuid.uuid4()
    expires_at = datetime.now(UTC) + timedelta(seconds=fed.settings.federation_ttl_seconds)
    trade_id = None
    if data.amount > 0:
        result = await ledger.create_trade(
            session,
            ledger.Booking(
                network_id=link.network_id,
                key=f"settlement:{transfer_id}",
                request_hash=request_hash("settlement", data.model_dump(mode="json")),
                payer=link.settlement_account_code,
                payee=link.account_code,
                amount=data.amount,
                pending=True,
                expires_at=expires_at,
                description=f"Settlement {data.reference} with {link.peer_code}",
                external_ref=data.reference,
                metadata={},
                actor=principal.actor,
                kind="settlement",
            ),
        )
        if result.outcome != "created" or result.trade is None:
            raise ledger_refusal(result)
        trade_id = uuid.UUID(result.trade["id"])
    return await outbound.queue(
        session,
        network_id=link.network_id,
        transfer_id=transfer_id,
        link=link,
        trade_id=trade_id,
        kind="settlement",
        payer=f"{link.network_code}/{link.settlement_account_code}",
        payee=f"{link.peer_code}/{SETTLEMENT_PREFIX}{link.network_code}",
        amount_sent=data.amount,
        expires_at=expires_at,
        description=f"Settlement {data.reference}",
        reference=data.reference,
        first_attempt_in=fed.settings.federation_timeout_seconds + 1,
        amount_received=received,
    )


async def cancel_settlement(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    reference: str,
    data: SettlementCancel,
) -> SettlementView:
    """Cancels this side's record of a settlement not executed (agreed, or refused by the
    peer), with the operator's reason (in the audit log too). A settlement sent or executed is
    refused (`settlement_not_cancellable`). The reference may be recorded again."""
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    settlement = await repository.get_settlement_for_update(session, link.id, reference)
    if settlement is None:
        raise SettlementNotFound(f"No settlement {reference!r} with {peer}", reference=reference)
    if settlement.status not in ("agreed", "refused"):
        raise SettlementNotCancellable(
            f"Settlement {reference} is {settlement.status}",
            reference=reference,
            settlement_status=settlement.status,
        )
    await explain(session, data.reason)
    await repository.cancel_settlement(session, settlement.id, data.reason)
    return _view(await repository.get_settlement(session, settlement.id))


def _view(settlement: SettlementRow) -> SettlementView:
    return SettlementView(
        id=settlement.id,
        peer=settlement.peer_code,
        reference=settlement.reference,
        amount=settlement.amount,
        status=settlement.status,
        status_reason=settlement.status_reason,
        transfer_id=settlement.transfer_id,
        created_by=settlement.created_by,
        created_at=settlement.created_at,
    )


async def list_settlements(
    session: AsyncSession, network_id: uuid.UUID, peer: str
) -> list[SettlementView]:
    link = await link_to(session, network_id, peer)
    return [_view(s) for s in await repository.list_settlements(session, link.id)]
