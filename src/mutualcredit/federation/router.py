"""Operators' federation endpoints: identity, links, statements, reconciliation, checkpoints,
settlements. Under the network: /v1/networks/{network}/federation/..."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.auth.service import Principal
from mutualcredit.db import Session
from mutualcredit.federation import keys, links, outbound, settlements, statements, trades
from mutualcredit.federation.context import Federation
from mutualcredit.federation.schemas import (
    CheckpointView,
    LinkCreate,
    LinkStatusChange,
    LinkUpdate,
    LinkView,
    PeerKeyCreate,
    SettlementCreate,
    SettlementView,
)
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import PROBLEM_RESPONSES, Count
from mutualcredit.trades.schemas import TransferView

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/federation",
    tags=["federation"],
    responses=PROBLEM_RESPONSES,
)


def _fed(request: Request) -> Federation:
    fed: Federation = request.app.state.federation
    return fed


@router.get("/identity", summary="This network's federation descriptor (address, unit, keys)")
async def identity(
    network: str, net_id: NetworkId, request: Request, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    require_reader(principal)
    return await keys.descriptor(_fed(request), session, network)


@router.post(
    "/keys/rotate",
    summary="Rotate the signing key; linked peers are told, signed with the old key (operator)",
)
async def rotate_key(
    network: str, net_id: NetworkId, request: Request, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await keys.rotate_key(_fed(request), session, principal, net_id)


@router.get("/links", response_model=list[LinkView], summary="Links to other networks")
async def list_links(
    network: str, net_id: NetworkId, session: Session, principal: CurrentPrincipal
) -> list[LinkView]:
    require_reader(principal)
    return await links.list_links(session, net_id)


@router.post(
    "/links",
    status_code=201,
    response_model=LinkView,
    summary="Propose a link to another network: its URL and key, the rate, the trust caps",
)
async def create_link(
    network: str,
    net_id: NetworkId,
    body: LinkCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def write() -> LinkView:
        return await links.create_link(_fed(request), session, principal, net_id, body)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"link:{network}",
        payload=body.model_dump(mode="json"),
        status_code=201,
        write=write,
    )


@router.get("/links/{peer}", response_model=LinkView, summary="A link")
async def get_link(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> LinkView:
    require_reader(principal)
    return await links.get_link(session, net_id, peer)


@router.patch(
    "/links/{peer}",
    response_model=LinkView,
    summary="Change a link's peer URL, routing or rate; a new rate must be agreed again (operator)",
)
async def update_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: LinkUpdate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def write() -> LinkView:
        return await links.update_link(_fed(request), session, principal, net_id, peer, body)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"link-update:{network}:{peer}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.post(
    "/links/{peer}/agree",
    response_model=LinkView,
    summary="Confirm the link with the peer (signed, both ways): value crosses once agreed",
)
async def agree_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> LinkView:
    return await links.agree_link(_fed(request), session, principal, net_id, peer)


async def _status(
    network: str,
    net_id: uuid.UUID,
    peer: str,
    body: LinkStatusChange,
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    status: str,
) -> Response:
    async def write() -> LinkView:
        return await links.set_link_status(session, principal, net_id, peer, status, body.reason)

    return await idempotent(
        session,
        principal,
        key,
        scope=f"link-{status}:{network}:{peer}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.post(
    "/links/{peer}/suspend",
    response_model=LinkView,
    summary="Suspend a link: no new trade crosses it (operator)",
)
async def suspend_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: LinkStatusChange,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _status(
        network, net_id, peer, body, session, principal, idempotency_key, "suspended"
    )


@router.post("/links/{peer}/resume", response_model=LinkView, summary="Resume a link (operator)")
async def resume_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: LinkStatusChange,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _status(network, net_id, peer, body, session, principal, idempotency_key, "active")


@router.post(
    "/links/{peer}/peer-keys",
    response_model=LinkView,
    summary="Register another key of the peer (after it rotated) (operator)",
)
async def add_peer_key(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: PeerKeyCreate,
    session: Session,
    principal: CurrentPrincipal,
) -> LinkView:
    return await links.add_peer_key(session, principal, net_id, peer, body)


@router.post(
    "/links/{peer}/peer-keys/{key_id}/revoke",
    response_model=LinkView,
    summary="Stop trusting a key of the peer (operator)",
)
async def revoke_peer_key(
    network: str,
    net_id: NetworkId,
    peer: str,
    key_id: str,
    session: Session,
    principal: CurrentPrincipal,
) -> LinkView:
    return await links.revoke_peer_key(session, principal, net_id, peer, key_id)


@router.get(
    "/links/{peer}/transfers",
    response_model=list[TransferView],
    summary="Transfers over a link, newest first",
)
async def list_transfers(
    network: str,
    net_id: NetworkId,
    peer: str,
    session: Session,
    principal: CurrentPrincipal,
    status: Annotated[str | None, Query(pattern="^(prepared|forwarded|accepted|refused)$")] = None,
    limit: Annotated[Count, Query(ge=1, le=1000)] = 100,
) -> list[TransferView]:
    require_reader(principal)
    return await trades.list_transfers(session, net_id, peer, status, limit)


@router.get("/links/{peer}/statement", summary="This side's statement of the link")
async def statement(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    require_reader(principal)
    return await statements.statement(session, await links.link_to(session, net_id, peer))


@router.get(
    "/links/{peer}/reconcile",
    summary="Compare both sides' statements and balances, and check the mirror",
)
async def reconcile(
    network: str,
    net_id: NetworkId,
    peer: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    return await statements.reconcile(_fed(request), session, principal, net_id, peer)


@router.post(
    "/links/{peer}/checkpoints",
    status_code=201,
    response_model=CheckpointView,
    summary="Agree a checkpoint with the peer: both sign chain positions, hashes and balances",
)
async def create_checkpoint(
    network: str,
    net_id: NetworkId,
    peer: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> CheckpointView:
    return await statements.propose_checkpoint(_fed(request), session, principal, net_id, peer)


@router.get(
    "/links/{peer}/checkpoints",
    response_model=list[CheckpointView],
    summary="Checkpoints both sides signed, newest first",
)
async def list_checkpoints(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> list[CheckpointView]:
    require_reader(principal)
    return await statements.list_checkpoints(session, net_id, peer)


@router.post(
    "/links/{peer}/settlements",
    status_code=201,
    response_model=SettlementView,
    summary="Record a settlement agreed with the peer; the side that is owed executes it",
)
async def record_settlement(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: SettlementCreate,
    request: Request,
    background: BackgroundTasks,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    fed = _fed(request)

    async def write() -> SettlementView:
        view, row_id = await settlements.record_settlement(
            fed, session, principal, net_id, peer, body
        )
        if row_id is not None:
            # After the response, so after the commit: the outbox row exists by then.
            background.add_task(outbound.deliver, fed, row_id)
        return view

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"settlement:{network}:{peer}",
        payload=body.model_dump(mode="json"),
        status_code=201,
        write=write,
    )


@router.get(
    "/links/{peer}/settlements",
    response_model=list[SettlementView],
    summary="Settlements of a link, newest first",
)
async def list_settlements(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> list[SettlementView]:
    require_reader(principal)
    return await settlements.list_settlements(session, net_id, peer)
