from fastapi import APIRouter
from starlette.responses import Response

from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_operator, require_platform
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service
from mutualcredit.networks.errors import NetworkCodeTaken
from mutualcredit.networks.schemas import Network, NetworkCreate, NetworkUpdate
from mutualcredit.responses import IdempotencyKey, idempotent

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks",
    tags=["networks"],
)


@router.post("", status_code=201, response_model=Network, summary="Create a network (platform)")
@answers(NetworkCodeTaken)
async def create_network(
    body: NetworkCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A platform key. Creates a network: its code (in every path), names, unit and scale (the
    decimal places of its minor unit), and the default limits of accounts opened in it. Then make
    its first operator key with `POST /v1/networks/{network}/keys`. Refused with 409
    `network_code_taken` when the code is in use."""
    require_platform(principal)

    async def write() -> Network:
        return Network.model_validate(await service.create_network(session, body))

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope="create_network",
        payload=body.model_dump(mode="json"),
        status_code=201,
        write=write,
    )


@router.get("", response_model=list[Network], summary="List every network (platform)")
async def list_networks(session: Session, principal: CurrentPrincipal) -> list[Network]:
    """A platform key. Every network of the deployment, with its names, unit, scale and default
    limits."""
    require_platform(principal)
    return [Network.model_validate(n) for n in await service.list_networks(session)]


@router.get("/{network}", response_model=Network, summary="Read a network")
@answers(any_key=True)
async def get_network(network: str, session: Session, principal: CurrentPrincipal) -> Network:
    """Any key of the network (and the platform). Its names, unit, scale and default limits. A key
    of another network gets 404 `network_not_found`: a network's existence is private."""
    return Network.model_validate(await service.get_network(session, principal, network))


@router.patch(
    "/{network}",
    response_model=Network,
    summary="Change names, or the default limits of accounts opened from now on",
)
async def update_network(
    network: str,
    body: NetworkUpdate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Changes its names, or the default limits of
    accounts opened from now on (with a `reason`, kept with the change; existing accounts keep
    theirs until `POST .../limits/apply-defaults`). Refused with 422 when the defaults change
    without a reason."""
    net = await service.get_network(session, principal, network)
    require_operator(principal)

    async def write() -> Network:
        return Network.model_validate(await service.update_network(session, net, body))

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"update_network:{net.code}",
        payload=body.model_dump(mode="json", exclude_unset=True),
        status_code=200,
        write=write,
    )
