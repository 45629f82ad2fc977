"""Operators' federation endpoints: identity, links, statements, reconciliation, checkpoints,
settlements. Under the network: /v1/networks/{network}/federation/..."""

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.auth.service import Principal
from mutualcredit.db import Session
from mutualcredit.federation import protocol, service
from mutualcredit.federation.protocol import Federation
from mutualcredit.federation.schemas import (
    CheckpointView,
    LinkCreate,
    LinkStatusChange,
    LinkUpdate,
    LinkView,
    PeerKeyCreate,
    SettlementCreate,
    SettlementView,
    TransferView,
)
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import PROBLEM_RESPONSES, Count

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
    network: str, request: Request, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.descriptor(_fed(request), session, network)


@router.post(
    "/keys/rotate",
    summary="Rotate the signing key; linked peers are told, signed with the old key (operator)",
)
async def rotate_key(
    network: str, request: Request, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    net_id = await networks.network_id(session, principal, network)
    return await service.rotate_key(_fed(request), session, principal, net_id)


@router.get("/links", response_model=list[LinkView], summary="Links to other networks")
async def list_links(network: str, session: Session, principal: CurrentPrincipal) -> list[LinkView]:
    net_id = await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.list_links(session, net_id)


@router.post(
    "/links",
    status_code=201,
    response_model=LinkView,
    summary="Propose a link to another network: its URL and key, the rate, the trust caps",
)
async def create_link(
    network: str,
    body: LinkCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    net_id = await networks.network_id(session, principal, network)

    async def write() -> LinkView:
        return await service.create_link(_fed(request), session, principal, net_id, body)

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
    network: str, peer: str, session: Session, principal: CurrentPrincipal
) -> LinkView:
    net_id = await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.get_link(session, net_id, peer)


@router.patch(
    "/links/{peer}",
    response_model=LinkView,
    summary="Change a link's peer URL, routing or rate; a new rate must be agreed again (operator)",
)
async def update_link(
    network: str,
    peer: str,
    body: LinkUpdate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    net_id = await networks.network_id(session, principal, network)

    async def write() -> LinkView:
        return await service.update_link(session, principal, net_id, peer, body)

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
    network: str, peer: str, request: Request, session: Session, principal: CurrentPrincipal
) -> LinkView:
    net_id = await networks.network_id(session, principal, network)
    return await service.agree_link(_fed(request), session, principal, net_id, peer)


async def _status(
    network: str,
    peer: str,
    body: LinkStatusChange,
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    status: str,
) -> Response:
    net_id = await networks.network_id(session, principal, network)

    async def write() -> LinkView:
        return await service.set_link_status(session, principal, net_id, peer, status, body.reason)

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
    peer: str,
    body: LinkStatusChange,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _status(network, peer, body, session, principal, idempotency_key, "suspended")


@router.post("/links/{peer}/resume", response_model=LinkView, summary="Resume a link (operator)")
async def resume_link(
    network: str,
    peer: str,
    body: LinkStatusChange,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _status(network, peer, body, session, principal, idempotency_key, "active")


@router.post(
    "/links/{peer}/peer-keys",
    response_model=LinkView,
    summary="Register another key of the peer (after it rotated) (operator)",
)
async def add_peer_key(
    network: str, peer: str, body: PeerKeyCreate, session: Session, principal: CurrentPrincipal
) -> LinkView:
    net_id = await networks.network_id(session, principal, network)
    return await service.add_peer_key(session, principal, net_id, peer, body)


@router.post(
    "/links/{peer}/peer-keys/{key_id}/revoke",
    response_model=LinkView,
    summary="Stop trusting a key of the peer (operator)",
)
async def revoke_peer_key(
    network: str, peer: str, key_id: str, session: Session, principal: CurrentPrincipal
) -> LinkView:
    net_id = await networks.network_id(session, principal, network)
    return await service.revoke_peer_key(session, principal, net_id, peer, key_id)


@router.get(
    "/links/{peer}/transfers",
    response_model=list[TransferView],
    summary="Transfers over a link, newest first",
)
async def list_transfers(
    network: str,
    peer: str,
    session: Session,
    principal: CurrentPrincipal,
    status: Annotated[str | None, Query(pattern="^(prepared|forwarded|accepted|refused)$")] = None,
    limit: Annotated[Count, Query(ge=1, le=1000)] = 100,
) -> list[TransferView]:
    net_id = await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.list_transfers(session, net_id, peer, status, limit)


@router.get("/links/{peer}/statement", summary="This side's statement of the link")
async def statement(
    network: str, peer: str, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    net_id = await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.statement(session, await service.link_row(session, net_id, peer))


@router.get(
    "/links/{peer}/reconcile",
    summary="Compare both sides' statements and balances, and check the mirror",
)
async def reconcile(
    network: str, peer: str, request: Request, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    net_id = await networks.network_id(session, principal, network)
    return await service.reconcile(_fed(request), session, principal, net_id, peer)


@router.post(
    "/links/{peer}/checkpoints",
    status_code=201,
    response_model=CheckpointView,
    summary="Agree a checkpoint with the peer: both sign chain positions, hashes and balances",
)
async def create_checkpoint(
    network: str, peer: str, request: Request, session: Session, principal: CurrentPrincipal
) -> CheckpointView:
    net_id = await networks.network_id(session, principal, network)
    return await service.propose_checkpoint(_fed(request), session, principal, net_id, peer)


@router.get(
    "/links/{peer}/checkpoints",
    response_model=list[CheckpointView],
    summary="Checkpoints both sides signed, newest first",
)
async def list_checkpoints(
    network: str, peer: str, session: Session, principal: CurrentPrincipal
) -> list[CheckpointView]:
    net_id = await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.list_checkpoints(session, net_id, peer)


@router.post(
    "/links/{peer}/settlements",
    status_code=201,
    response_model=SettlementView,
    summary="Record a settlement agreed with the peer; the side that is owed executes it",
)
async def record_settlement(
    network: str,
    peer: str,
    body: SettlementCreate,
    request: Request,
    background: BackgroundTasks,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    net_id = await networks.network_id(session, principal, network)
    fed = _fed(request)

    async def write() -> SettlementView:
        view, row_id = await service.record_settlement(fed, session, principal, net_id, peer, body)
        if row_id is not None:
            # After the response, so after the commit: the outbox row exists by then.
            background.add_task(protocol.deliver, fed, row_id)
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
    network: str, peer: str, session: Session, principal: CurrentPrincipal
) -> list[SettlementView]:
    net_id = await networks.network_id(session, principal, network)
    require_reader(principal)
    return await service.list_settlements(session, net_id, peer)
