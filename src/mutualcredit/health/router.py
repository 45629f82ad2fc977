from typing import Annotated

from fastapi import APIRouter, Query

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.db import Session
from mutualcredit.health import service
from mutualcredit.health.schemas import NetworkHealth
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.schemas import Count, Moment

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["health"],
)


@router.get(
    "/health",
    response_model=NetworkHealth,
    summary="Network health: activity, velocity, limit use, balance bands, dormant balances",
)
async def get_network_health(
    network: str,
    session: Session,
    principal: CurrentPrincipal,
    period: service.Period = "day",
    since: Annotated[Moment | None, Query(alias="from")] = None,
    until: Annotated[Moment | None, Query(alias="to")] = None,
    near_percent: Annotated[Count, Query(ge=1, le=100, description="'Near' a limit.")] = 90,
    dormant_days: Annotated[Count, Query(ge=1, le=3650)] = 90,
) -> NetworkHealth:
    """An operator or auditor of the network (or the platform). Over member accounts, per day, week
    or month: trade count, volume and active accounts; velocity; how many accounts are beyond, at or
    near their limits; balances in bands of the default credit limit; dormant accounts still holding
    a balance. Ratios are exact decimal strings."""
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
