"""The event feed, `GET /v1/networks/{network}/events`, and its live form (long polling).

Long polling: with `wait=<seconds>` (at most 30) a read that finds nothing waits for the first
event, checking every POLL_SECONDS on a fresh transaction, and answers as soon as one is
there, or with an empty page when the wait is over. Between checks the request holds no
database connection, so an app that keeps a request open costs the pool nothing while it waits.
"""

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.models import Role
from mutualcredit.db import Session
from mutualcredit.errors import Forbidden
from mutualcredit.events import service
from mutualcredit.events.errors import UnknownEventType
from mutualcredit.events.schemas import Event
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import PageSize
from mutualcredit.schemas import Count, OutputModel

router = APIRouter(route_class=StrictJSONRoute, prefix="/v1/networks/{network}", tags=["events"])

POLL_SECONDS = 0.2
MAX_WAIT_SECONDS = 30


class EventPage(OutputModel):
    items: list[Event]
    next_after: int = Field(
        description="Pass as `after` to read on: the seq of the last event here, or the `after`"
        " sent when there is none."
    )


@router.get(
    "/events",
    response_model=EventPage,
    summary="The network's events in commit order; long polling with `wait`",
)
@answers(UnknownEventType, AccountNotFound)
async def list_events(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    after: Annotated[Count, Query(ge=0, description="Events after this seq (0: the first).")] = 0,
    types: Annotated[
        str | None,
        Query(max_length=1000, description="Comma-separated event types (all if absent)."),
    ] = None,
    account: Annotated[
        str | None,
        Query(max_length=100, description="Only events about this account (a member: its own)."),
    ] = None,
    limit: PageSize = 100,
    wait: Annotated[
        Count,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to wait for an event when there is none yet (long polling).",
        ),
    ] = 0,
) -> EventPage:
    """An operator or auditor of the network (or the platform): every event; a member key: the
    events about its own account (403 for another `account`), with no other account's balance.
    In seq order, which is commit order: read on from `next_after`, and no committed event is
    skipped or repeated. With `wait`, answers as soon as an event arrives."""
    type_list = [t for t in (types or "").split(",") if t] or None
    if type_list is not None:
        service.check_types(type_list)
    viewer = None
    if principal.role is Role.member:
        if account is not None and account != principal.account_code:
            raise Forbidden("A member key may only read the events of its own account")
        account = viewer = principal.account_code
    elif account is not None:
        await service.require_account(session, net_id, account)
    deadline = time.monotonic() + wait
    while True:
        events = await service.read(
            session,
            net_id,
            after=after,
            types=type_list,
            account=account,
            limit=limit,
            network_code=network,
            viewer=viewer,
        )
        if events or time.monotonic() >= deadline:
            break
        # Hand the connection back while waiting; the next read starts a new transaction.
        await session.close()
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    return EventPage(items=events, next_after=events[-1].seq if events else after)
