import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import State
from starlette.responses import Response

from mutualcredit import addresses
from mutualcredit.auth.dependencies import BookingPrincipal, CurrentPrincipal
from mutualcredit.auth.service import Principal
from mutualcredit.db import Session, write_connection
from mutualcredit.errors import IdempotencyKeyRequired
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.networks.errors import NetworkNotFound
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.responses import IdempotencyKey, idempotency_key, idempotent, json_response
from mutualcredit.schemas import PROBLEM_RESPONSES, Moment, Page
from mutualcredit.trades import service
from mutualcredit.trades.cross_network import CrossNetwork
from mutualcredit.trades.models import TradeStatus
from mutualcredit.trades.schemas import Trade, TradeCreate, TradePost, TradeReverse, TradeVoid

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/trades",
    tags=["trades"],
    responses=PROBLEM_RESPONSES,
)


def _cross_network(request: Request) -> CrossNetwork:
    """Federation, as the ledger sees it: wired by create_app (trades/cross_network.py)."""
    cross_network: CrossNetwork = request.app.state.cross_network
    return cross_network


CrossNetworkDep = Annotated[CrossNetwork, Depends(_cross_network)]

TradeKey = Annotated[
    str | None,
    idempotency_key(
        "Required. The trade's key, unique in the network: a retry with the same key and body "
        "returns the original outcome (the trade, or the same refusal); with a different body "
        "it is a 409 idempotency_conflict."
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=Trade,
    summary="Pay: book a trade at once, or hold it (pending) to post or void later",
)
async def create_trade(
    network: str,
    body: TradeCreate,
    request: Request,
    principal: BookingPrincipal,
    idempotency_key: TradeKey = None,
) -> Response:
    # Required, but declared optional so that its absence is our own clear problem, not a
    # generic validation error.
    if idempotency_key is None:
        raise IdempotencyKeyRequired(
            "Send an Idempotency-Key header (a UUID) so that a retry can never pay twice"
        )
    # No request transaction here: the trade is booked by one statement of its own, committed
    # before this returns (trades/booker.py).
    if addresses.is_remote(body.payee):
        # 201 and the posted trade when the other network accepted it at once; 202 and the
        # pending trade while it has not decided (read the trade, or retry with the same key).
        cross_network: CrossNetwork = request.app.state.cross_network
        sent = await cross_network.send(principal, network, idempotency_key, body)
        return json_response(
            sent.trade.model_dump(mode="json"), 202 if sent.in_flight else 201,
            replayed=sent.replayed,
        )  # fmt: skip
    return await book_local(request.app.state, principal, network, idempotency_key, body)


async def book_local(
    state: State, principal: Principal, network: str, key: str, body: TradeCreate
) -> Response:
    """Books a trade between two accounts of one network: the route's work once the request
    is known to be well formed, shared with the trade lane (trades/lane.py)."""
    net_id = networks.own_network_id(principal, network)
    if net_id is None:  # a platform key names any network: look it up
        async with write_connection(state.fast_pool, state.pool_timeout) as conn:
            net_id = await conn.fetchval("SELECT id FROM networks WHERE code = $1", network)
        if net_id is None:
            raise NetworkNotFound(f"No network {network!r}")
    created = await service.create_trade(
        state.booker, principal, net_id, key, body, default_ttl=state.pending_ttl
    )
    return json_response(created.trade.model_dump(mode="json"), 201, replayed=created.replayed)


@router.get("", response_model=Page[Trade], summary="List trades (a member: its own)")
async def list_trades(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    account: Annotated[str | None, Query(max_length=64)] = None,
    status: TradeStatus | None = None,
    since: Annotated[Moment | None, Query(alias="from")] = None,
    until: Annotated[Moment | None, Query(alias="to")] = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[Trade]:
    items, next_cursor = await service.list_trades(
        session,
        principal,
        net_id,
        account=account,
        status=status,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return Page[Trade](items=items, next_cursor=next_cursor)


@router.get("/{trade_id}", response_model=Trade, summary="Read a trade")
async def get_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    cross_network: CrossNetworkDep,
) -> Trade:
    return await service.get_trade(session, principal, net_id, trade_id, cross_network)


@router.post(
    "/{trade_id}/post",
    response_model=Trade,
    summary="Post a pending trade, in full or in part (payer, payee or operator)",
)
async def post_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    body: TradePost | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    data = body or TradePost()

    async def write() -> Trade:
        return await service.resolve_trade(session, principal, net_id, trade_id, "post", data)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"post:{network}:{trade_id}",
        payload=data.model_dump(mode="json"),
        status_code=200,
        write=write,
    )


@router.post(
    "/{trade_id}/reverse",
    status_code=201,
    response_model=Trade,
    summary="Reverse a posted trade: a new, linked trade back, with a reason (operator)",
)
async def reverse_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    body: TradeReverse,
    session: Session,
    principal: CurrentPrincipal,
) -> Response:
    created = await service.reverse_trade(session, principal, net_id, trade_id, body)
    return json_response(created.trade.model_dump(mode="json"), 201, replayed=created.replayed)


@router.post(
    "/{trade_id}/void",
    response_model=Trade,
    summary="Void a pending trade: release the hold (payee or operator)",
)
async def void_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    body: TradeVoid | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def write() -> Trade:
        return await service.resolve_trade(session, principal, net_id, trade_id, "void")

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"void:{network}:{trade_id}",
        payload={},
        status_code=200,
        write=write,
    )
