import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import State
from starlette.responses import Response

from mutualcredit import addresses
from mutualcredit.accounts.errors import (
    AccountClosed,
    AccountNotFound,
    AccountReserved,
    AccountSuspended,
)
from mutualcredit.apidoc import answers
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
from mutualcredit.schemas import Moment, Page
from mutualcredit.trades import service
from mutualcredit.trades.cross_network import CrossNetwork
from mutualcredit.trades.errors import (
    AmountExceedsHold,
    AmountOutOfRange,
    BalanceMaxExceeded,
    CreditLimitExceeded,
    SameAccount,
    TradeAlreadyReversed,
    TradeExpired,
    TradeFederated,
    TradeNotFound,
    TradeNotPending,
    TradeNotPosted,
    TradeNotReversible,
)
from mutualcredit.trades.models import TradeStatus
from mutualcredit.trades.schemas import Trade, TradeCreate, TradePost, TradeReverse, TradeVoid

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/trades",
    tags=["trades"],
)


def _cross_network(request: Request) -> CrossNetwork:
    """Federation, as the ledger sees it: wired by create_app (trades/cross_network.py)."""
    cross_network: CrossNetwork = request.app.state.cross_network
    return cross_network


CrossNetworkDep = Annotated[CrossNetwork, Depends(_cross_network)]

TradeKey = Annotated[
    str,
    idempotency_key(
        "The trade's key, unique in the network (a UUID is ideal): a retry with the same key "
        "and body returns the original outcome (the trade, or the same refusal); with a "
        "different body it is a 409 idempotency_conflict. Without it: 422 "
        "idempotency_key_required.",
        required=True,
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=Trade,
    summary="Pay: book a trade at once, or hold it (pending) to post or void later",
    responses={
        202: {
            "model": Trade,
            "description": "Across networks, not decided yet: the pending trade. Read it, or "
            "retry with the same Idempotency-Key, to learn the outcome.",
        }
    },
)
@answers(
    IdempotencyKeyRequired,
    AccountNotFound,
    SameAccount,
    CreditLimitExceeded,
    BalanceMaxExceeded,
    AccountSuspended,
    AccountClosed,
    AccountReserved,
    AmountOutOfRange,
)
async def create_trade(
    network: str,
    body: TradeCreate,
    request: Request,
    principal: BookingPrincipal,
    idempotency_key: TradeKey,
) -> Response:
    """An operator of the network (or the platform), or a member key paying from its own account.
    Debits the payer and credits the payee by `amount`, at once (201, `status: posted`); with
    `"pending": true` it holds the amount until the hold is posted, voided or expires. A payee
    `network/account` pays a member of a linked network: 201 with the posted trade when that network
    accepted it at once, 202 with the pending trade while it has not decided.

    Requires an `Idempotency-Key`: a retry with the same key and body answers as the first time
    (`Idempotent-Replayed: true`), refusals included. Refusals: 409 `credit_limit_exceeded`,
    `balance_max_exceeded`, `account_suspended`, `account_closed` (with the numbers: `available`,
    `shortfall`, `headroom`, `excess`); 404 `account_not_found`; 422 `same_account`; across networks
    409 `no_route`, `link_not_active`, `transfer_refused`, and 422 `invalid_address`,
    `amount_too_small`."""
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
    """An operator or auditor of the network (or the platform): every trade, or those of one
    `account`; a member key: its own account's trades only (403 for another `account`). Optionally
    of one status and within `from` and `to`, a page at a time."""
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
@answers(TradeNotFound)
async def get_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    cross_network: CrossNetworkDep,
) -> Trade:
    """An operator or auditor of the network (or the platform), or a member key of the payer or the
    payee (to anyone else it is 404 `trade_not_found`). The trade, its status and, across networks,
    its transfer."""
    return await service.get_trade(session, principal, net_id, trade_id, cross_network)


@router.post(
    "/{trade_id}/post",
    response_model=Trade,
    summary="Post a pending trade, in full or in part (payer, payee or operator)",
)
@answers(
    TradeNotFound,
    TradeNotPending,
    TradeExpired,
    AmountExceedsHold,
    TradeFederated,
    CreditLimitExceeded,
    BalanceMaxExceeded,
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
    """The payer, the payee or an operator of the network (or the platform). Posts a hold: all of
    it, or `{"amount": n}` of it (the rest is released). Refused with 409 `trade_not_pending` once
    it is posted, voided or expired, `trade_expired` past its `expires_at`, `amount_exceeds_hold`
    for more than is held, and `trade_federated` for a cross-network hold (the protocol finishes
    it). A posted hold pays the levies in force (its `fees`): a levy whose rule refuses to go past
    a limit refuses the post with 409 `credit_limit_exceeded` or `balance_max_exceeded` (with
    `account`, `fee_rule` and the numbers), and the hold stays pending."""
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
@answers(
    TradeNotFound,
    TradeNotPosted,
    TradeNotReversible,
    TradeAlreadyReversed,
    TradeFederated,
    CreditLimitExceeded,
    BalanceMaxExceeded,
    AccountSuspended,
    AccountClosed,
)
async def reverse_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    body: TradeReverse,
    session: Session,
    principal: CurrentPrincipal,
) -> Response:
    """An operator of the network (or the platform). Corrects a posted trade with a new trade back,
    linked both ways, with a `reason`; it respects limits unless `override_limits` is set, which is
    recorded on the trade. The levies the trade paid are reversed with it, in the same transaction
    (each by a reversal of its own fee trade, but one already reversed); a fee trade may be reversed
    alone (a refund). Refused with 409 `trade_not_posted`, `trade_not_reversible` (a reversal),
    `trade_already_reversed` (at most one reversal per trade), or a limit or account refusal."""
    created = await service.reverse_trade(session, principal, net_id, trade_id, body)
    return json_response(created.trade.model_dump(mode="json"), 201, replayed=created.replayed)


@router.post(
    "/{trade_id}/void",
    response_model=Trade,
    summary="Void a pending trade: release the hold (payee or operator)",
)
@answers(TradeNotFound, TradeNotPending, TradeExpired, TradeFederated)
async def void_trade(
    network: str,
    net_id: NetworkId,
    trade_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    body: TradeVoid | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The payee or an operator of the network (or the platform): a hold is the payer's promise,
    which the payer cannot withdraw alone. Releases the hold. Refused with 409 `trade_not_pending`
    once it is posted, voided or expired, `trade_expired` when its expiry has passed (the hold is
    released as expired), and `trade_federated` for a cross-network hold."""

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
