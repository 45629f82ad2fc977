"""Operators' federation endpoints for what crossed a link: its transfers, this side's
statement, reconciliation with the peer's, checkpoints both sides sign, and settlements. Under
the network: /v1/networks/{network}/federation/links/{peer}/..."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import BookingPrincipal, CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.db import Session
from mutualcredit.federation import links, resolve, settlements, statements, trades
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    CheckpointMismatch,
    LinkLedgerMismatch,
    LinkNotActive,
    LinkNotFound,
    PeerUnreachable,
    SettlementAmountMismatch,
    SettlementExists,
    SettlementInvalid,
    SettlementNotCancellable,
    SettlementNotFound,
    SettlementNotRecorded,
    SettlementRefused,
    TransferNotExpired,
    TransferNotFound,
    TransferNotInFlight,
)
from mutualcredit.federation.schemas import (
    CheckpointView,
    SettlementCancel,
    SettlementCreate,
    SettlementView,
    TransferResolve,
)
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.responses import IdempotencyKey, idempotent, json_response
from mutualcredit.schemas import Count
from mutualcredit.trades.errors import BalanceMaxExceeded, CreditLimitExceeded
from mutualcredit.trades.schemas import TransferView

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/federation",
    tags=["federation"],
)


def _fed(request: Request) -> Federation:
    fed: Federation = request.app.state.federation
    return fed


@router.get(
    "/links/{peer}/transfers",
    response_model=list[TransferView],
    summary="Transfers over a link, newest first",
)
@answers(LinkNotFound)
async def list_transfers(
    network: str,
    net_id: NetworkId,
    peer: str,
    session: Session,
    principal: CurrentPrincipal,
    status: Annotated[
        str | None,
        Query(pattern="^(prepared|forwarded|accepted|refused|resolved|disputed)$"),
    ] = None,
    limit: Annotated[Count, Query(ge=1, le=1000)] = 100,
) -> list[TransferView]:
    """An operator or auditor of the network (or the platform). The transfers over a link, newest
    first, optionally of one status."""
    require_reader(principal)
    return await trades.list_transfers(session, net_id, peer, status, limit)


@router.post(
    "/links/{peer}/transfers/{transfer_id}/resolve",
    response_model=TransferView,
    summary="Resolve a transfer the peer never answered, past its expiry: post or void its hold",
)
@answers(LinkNotFound, TransferNotFound, TransferNotExpired, TransferNotInFlight)
async def resolve_transfer(
    network: str,
    net_id: NetworkId,
    peer: str,
    transfer_id: uuid.UUID,
    body: TransferResolve,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Ends a transfer sent over the link whose
    outcome is unknown (the peer gave no final receipt) once its expiry has passed: `void`
    releases its hold, `post` books it, with a `reason` kept in the audit log. The transfer is
    then `resolved`; the outbox still asks the peer for its word, and a contradicting one makes
    it `disputed` (reconciliation lists it; no value moves by itself). At a hub, the transfer it
    received is decided the same way. Refused with 409 `transfer_not_expired` before the
    expiry, `transfer_not_in_flight` once the outcome is known, and 404 `transfer_not_found`."""

    async def write() -> TransferView:
        return await resolve.resolve_transfer(session, principal, net_id, peer, transfer_id, body)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"transfer-resolve:{network}:{peer}:{transfer_id}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.get("/links/{peer}/statement", summary="This side's statement of the link")
@answers(LinkNotFound)
async def get_link_statement(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    """An operator or auditor of the network (or the platform). This side's statement of the link:
    its transfers' chain positions and hashes, the balances they add up to, and `ledger`: the
    link and settlement accounts as the ledger holds them and as the records say."""
    require_reader(principal)
    return await statements.statement(session, await links.link_to(session, net_id, peer))


@router.get(
    "/links/{peer}/reconcile",
    summary="Compare both sides' statements and balances, and check the mirror",
)
@answers(LinkNotFound, PeerUnreachable)
async def reconcile_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """An operator or auditor of the network (or the platform). Reads the peer's statement of the
    link (a signed call) and compares it with this side's: chains, balances, each side's ledger
    against its own records (`ledgers`), and the mirror (each side's link balance, converted at
    the rate, is the other's with the sign turned). `agreed` only when the chains are the same
    and neither ledger differs from its records. Refused with 502 `peer_unreachable` when the
    peer gives no signed answer."""
    return await statements.reconcile(_fed(request), session, principal, net_id, peer)


@router.post(
    "/links/{peer}/checkpoints",
    status_code=201,
    response_model=CheckpointView,
    summary="Agree a checkpoint with the peer: both sign chain positions, hashes and balances",
)
@answers(LinkNotFound, CheckpointMismatch, LinkLedgerMismatch, PeerUnreachable)
async def create_checkpoint(
    network: str,
    net_id: NetworkId,
    peer: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> CheckpointView:
    """An operator of the network (or the platform). Agrees a checkpoint with the peer: both sides
    sign the chain positions, hashes and balances of the link as they stand. Refused with 409
    `link_ledger_mismatch` while either side's ledger differs from its records of the link
    (`side` names the network, `differences` the figures), 409 `checkpoint_mismatch` when the
    two sides' records differ (reconcile first), and 502 `peer_unreachable` when the peer gives
    no signed answer."""
    return await statements.propose_checkpoint(_fed(request), session, principal, net_id, peer)


@router.get(
    "/links/{peer}/checkpoints",
    response_model=list[CheckpointView],
    summary="Checkpoints both sides signed, newest first",
)
@answers(LinkNotFound)
async def list_checkpoints(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> list[CheckpointView]:
    """An operator or auditor of the network (or the platform). The checkpoints both sides signed,
    newest first."""
    require_reader(principal)
    return await statements.list_checkpoints(session, net_id, peer)


@router.post(
    "/links/{peer}/settlements",
    status_code=201,
    response_model=SettlementView,
    summary="Record a settlement agreed with the peer; the side that is owed executes it",
    responses={
        202: {
            "model": SettlementView,
            "description": "Executing, and the peer has not answered yet: status `sent`. The"
            " outbox keeps delivering; list the settlements, or retry with the same key.",
        }
    },
)
@answers(
    LinkNotFound,
    LinkNotActive,
    SettlementInvalid,
    SettlementExists,
    SettlementNotRecorded,
    SettlementAmountMismatch,
    SettlementRefused,
    CreditLimitExceeded,
    BalanceMaxExceeded,
)
async def record_settlement(
    network: str,
    peer: str,
    body: SettlementCreate,
    request: Request,
    principal: BookingPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Records a settlement agreed with the peer (a
    `reference` and an `amount`): the side that owes only records it (201, `agreed`); the side
    that is owed then records it and executes it, moving both link balances toward zero, and
    answers with the peer's decision: 201 `executed`, or 202 `sent` while the peer has not
    answered. An `amount` equal to this side's whole link balance settles the link in full: both
    balances end at exactly zero (0 from a side whose balance is zero while the peer's is not).

    Refused here with 409 `settlement_invalid` (it would not move the balance toward zero, or is
    more than is owed), `settlement_exists` (the reference stands already), `link_not_active`.
    Refused by the peer (status `refused`; the reference may be recorded again, with any amount):
    409 `settlement_not_recorded` (the owing side has not recorded it: the wrong order),
    `settlement_amount_mismatch` (the amounts do not correspond at the rate, or not to both whole
    balances), `settlement_invalid`, or `settlement_refused` with the peer's `remote_code`."""
    # No request transaction: the settlement is committed before its transfer is delivered,
    # and the answer is read after the peer's (settlements.settle).
    status, view, replayed = await settlements.settle(
        _fed(request), principal, network, peer, idempotency_key, body
    )
    return json_response(view, status, replayed=replayed)


@router.post(
    "/links/{peer}/settlements/{reference}/cancel",
    response_model=SettlementView,
    summary="Cancel this side's record of a settlement not executed",
)
@answers(LinkNotFound, SettlementNotFound, SettlementNotCancellable)
async def cancel_settlement(
    network: str,
    net_id: NetworkId,
    peer: str,
    reference: str,
    body: SettlementCancel,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Cancels this side's record of a settlement
    recorded and not executed (`agreed`, or `refused` by the peer), with a `reason` (kept on it
    and in the audit log); the reference may then be recorded again. Refused with 409
    `settlement_not_cancellable` once it is sent or executed, and 404 `settlement_not_found`.
    The peer's record is its own: its operator cancels it there."""

    async def write() -> SettlementView:
        return await settlements.cancel_settlement(
            session, principal, net_id, peer, reference, body
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"settlement-cancel:{network}:{peer}:{reference}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.get(
    "/links/{peer}/settlements",
    response_model=list[SettlementView],
    summary="Settlements of a link, newest first",
)
@answers(LinkNotFound)
async def list_settlements(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> list[SettlementView]:
    """An operator or auditor of the network (or the platform). The settlements of a link, newest
    first."""
    require_reader(principal)
    return await settlements.list_settlements(session, net_id, peer)
