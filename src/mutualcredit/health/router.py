from typing import Annotated

from fastapi import APIRouter, Query

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.db import Session
from mutualcredit.health import service
from mutualcredit.health.schemas import Health
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.schemas import PROBLEM_RESPONSES, Count, Moment

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["health"],
    responses=PROBLEM_RESPONSES,
)


@router.get(
    "/health",
    response_model=Health,
    summary="Network health: activity, velocity, limit use, balance bands, dormant balances",
)
async def network_health(
    network: str,
    session: Session,
    principal: CurrentPrincipal,
    period: service.Period = "day",
    since: Annotated[Moment | None, Query(alias="from")] = None,
    until: Annotated[Moment | None, Query(alias="to")] = None,
    near_percent: Annotated[Count, Query(ge=1, le=100, description="'Near' a limit.")] = 90,
    dormant_days: Annotated[Count, Query(ge=1, le=3650)] = 90,
) -> Health:
    net = await networks.get_network(session, principal, network)
    require_reader(principal)
    return await service.network_health(
        session,
        net,
        period=period,
        since=since,
        until=until,
        near_percent=near_percent,
        dormant_days=dormant_days,
    )
