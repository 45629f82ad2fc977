"""Operators' federation endpoints for the network's identity and its links: the descriptor, key
rotation, links (create, change, agree, suspend, resume) and the peer keys they trust. What
crossed a link (transfers, statements, reconciliation, checkpoints, settlements) has its own
router, statements_router.py. Under the network: /v1/networks/{network}/federation/..."""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mutualcredit.apidoc import also_answers, answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.auth.service import Principal
from mutualcredit.db import Session
from mutualcredit.federation import keys, links
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    AmountTooLarge,
    AmountTooSmall,
    InvalidAddress,
    LinkExists,
    LinkNotActive,
    LinkNotFound,
    LinkRateMismatch,
    NoRoute,
    PeerKeyConflict,
    PeerKeyNotFound,
    PeerKeyRetired,
    PeerUnreachable,
    RouteTaken,
    TransferRefused,
)
from mutualcredit.federation.schemas import (
    KeyRotation,
    LinkCreate,
    LinkStatusChange,
    LinkUpdate,
    LinkView,
    PeerKeyCreate,
)
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.responses import IdempotencyKey, idempotent

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/federation",
    tags=["federation"],
)


# A payee in another network makes the ledger's trade route (`POST .../trades`) hand the trade
# to federation (trades/cross_network.py); the route, below federation, cannot name the refusals
# it then answers, so federation declares them for the API description.
also_answers(
    "create_trade",
    InvalidAddress,
    NoRoute,
    LinkNotActive,
    AmountTooSmall,
    AmountTooLarge,
    TransferRefused,
)


def _fed(request: Request) -> Federation:
    fed: Federation = request.app.state.federation
    return fed


@router.get("/identity", summary="This network's federation descriptor (address, unit, keys)")
async def get_identity(
    network: str, net_id: NetworkId, request: Request, session: Session, principal: CurrentPrincipal
) -> dict[str, Any]:
    """An operator or auditor of the network (or the platform). This network's federation
    descriptor: its address, unit, public URL and signing keys, as a peer's operator links with it,
    whether or not it is public (`descriptor_public` on the network): a private one is handed to
    a peer's operator out of band. Read only: a network has no key until its operator makes one
    (`POST .../keys/rotate`, or a link)."""
    require_reader(principal)
    return await keys.descriptor(_fed(request), session, network, public=False)


@router.post(
    "/keys/rotate",
    summary="Rotate the signing key (the first rotation makes the first key); peers are told "
    "(operator)",
)
async def rotate_key(
    network: str,
    net_id: NetworkId,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    body: KeyRotation | None = None,
) -> dict[str, Any]:
    """An operator of the network (or the platform). Makes a new signing key, which signs from
    now on, and retires the old one: linked peers accept the old key for `grace_seconds` more
    (default a day, at most a week), or not at all when `compromised`. Every linked peer is told
    in a request signed with the old key, carrying the new key's signature of the rotation. A
    peer that cannot be told is named in the answer (`peers`), not refused: register the new key
    there by hand (`POST .../peer-keys`). A network with no key yet gets its first (nothing is
    retired, no peer told): until then its descriptor is not published."""
    data = body if body is not None else KeyRotation()
    return await keys.rotate_key(_fed(request), session, principal, net_id, data)


@router.get("/links", response_model=list[LinkView], summary="Links to other networks")
async def list_links(
    network: str, net_id: NetworkId, session: Session, principal: CurrentPrincipal
) -> list[LinkView]:
    """An operator or auditor of the network (or the platform). Every link to another network: its
    status, rate, trust caps, peer URL and keys."""
    require_reader(principal)
    return await links.list_links(session, net_id)


@router.post(
    "/links",
    status_code=201,
    response_model=LinkView,
    summary="Propose a link to another network: its URL and key, the rate, the trust caps",
)
@answers(LinkExists)
async def create_link(
    network: str,
    net_id: NetworkId,
    body: LinkCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Proposes a link: the peer's network code, URL
    and signing key (from its descriptor), the exchange rate `num/den` (what one minor unit here is
    worth there), and the trust caps (`credit_limit`: how much the peer may owe; `balance_max`: how
    much this network lets itself owe). No value crosses until the link is agreed. Refused with 409
    `link_exists` when a link to that network exists."""

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
@answers(LinkNotFound)
async def get_link(
    network: str, net_id: NetworkId, peer: str, session: Session, principal: CurrentPrincipal
) -> LinkView:
    """An operator or auditor of the network (or the platform). One link, by the peer's network
    code."""
    require_reader(principal)
    return await links.get_link(session, net_id, peer)


@router.patch(
    "/links/{peer}",
    response_model=LinkView,
    summary="Change a link's peer URL, routes or rate; a new rate must be agreed again (operator)",
)
@answers(LinkNotFound, RouteTaken)
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
    """An operator of the network (or the platform). Changes the peer's URL, whether the link is
    the default route, or its route table (the networks reached through the peer), at once; a
    new rate takes the link out of use until both sides agree it again. A `reason` is kept on
    record."""

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
@answers(LinkNotFound, LinkRateMismatch, PeerUnreachable)
async def agree_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> LinkView:
    """An operator of the network (or the platform). Confirms the link with the peer by a signed
    call: both must hold the same rate, inverted. Then both sides are `active` and value crosses.
    Refused with 409 `link_rate_mismatch` when the peer holds another rate, and 502
    `peer_unreachable` when the peer gives no signed answer."""
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
@answers(LinkNotFound)
async def suspend_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: LinkStatusChange,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). No new trade crosses the link until it is
    resumed; transfers in flight finish. A `reason` is kept on record."""
    return await _status(
        network, net_id, peer, body, session, principal, idempotency_key, "suspended"
    )


@router.post("/links/{peer}/resume", response_model=LinkView, summary="Resume a link (operator)")
@answers(LinkNotFound, LinkNotActive)
async def resume_link(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: LinkStatusChange,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). A suspended link carries trades again, with a
    `reason`. Refused with 409 `link_not_active` for a link whose rate both sides have not agreed.
    """
    return await _status(network, net_id, peer, body, session, principal, idempotency_key, "active")


@router.post(
    "/links/{peer}/peer-keys",
    response_model=LinkView,
    summary="Register another key of the peer (after it rotated) (operator)",
)
@answers(LinkNotFound, PeerKeyConflict, PeerKeyRetired)
async def add_peer_key(
    network: str,
    net_id: NetworkId,
    peer: str,
    body: PeerKeyCreate,
    session: Session,
    principal: CurrentPrincipal,
) -> LinkView:
    """An operator of the network (or the platform). Trusts another signing key of the peer (after
    it rotated and could not tell this network itself). Refused with 409 `peer_key_conflict` when
    the key id is registered with another public key, and 409 `peer_key_retired` for a key the
    peer retired by a rotation (never trusted again)."""
    return await links.add_peer_key(session, principal, net_id, peer, body)


@router.post(
    "/links/{peer}/peer-keys/{key_id}/revoke",
    response_model=LinkView,
    summary="Stop trusting a key of the peer (operator)",
)
@answers(LinkNotFound, PeerKeyNotFound)
async def revoke_peer_key(
    network: str,
    net_id: NetworkId,
    peer: str,
    key_id: str,
    session: Session,
    principal: CurrentPrincipal,
) -> LinkView:
    """An operator of the network (or the platform). Stops trusting a signing key of the peer:
    requests signed with it are refused from then on."""
    return await links.revoke_peer_key(session, principal, net_id, peer, key_id)
