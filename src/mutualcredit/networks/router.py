from fastapi import APIRouter
from starlette.responses import Response

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_operator, require_platform
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service
from mutualcredit.networks.schemas import Network, NetworkCreate, NetworkUpdate
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import PROBLEM_RESPONSES

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks",
    tags=["networks"],
    responses=PROBLEM_RESPONSES,
)


@router.post("", status_code=201, response_model=Network, summary="Create a network (platform)")
async def create_network(
    body: NetworkCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
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
    require_platform(principal)
    return [Network.model_validate(n) for n in await service.list_networks(session)]


@router.get("/{network}", response_model=Network, summary="Read a network")
async def get_network(network: str, session: Session, principal: CurrentPrincipal) -> Network:
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
