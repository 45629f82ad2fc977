from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.accounts.schemas import Account
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.limits import service
from mutualcredit.limits.errors import NoLimitsThen
from mutualcredit.limits.schemas import (
    DefaultsApplied,
    DefaultsApply,
    LimitChange,
    LimitsAt,
    LimitsSet,
    LimitsUpdate,
)
from mutualcredit.networks import service as networks
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import Moment, Page

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["limits"],
)


@router.put(
    "/accounts/{account}/limits",
    response_model=LimitsSet,
    summary="Set an account's limits, with a reason; optionally until a date (operator)",
)
@answers(AccountNotFound)
async def set_limits(
    network: str,
    net_id: NetworkId,
    account: str,
    body: LimitsUpdate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Sets `credit_limit` (how far below zero the
    account may go) and `balance_max` (how much it may hold; null: no cap) with a `reason`, kept
    with the change; with `until`, only until then. A limit below what the account already uses is
    allowed: the answer lists `beyond_limits`, and the account can then only move back toward it."""
    require_operator(principal)

    async def write() -> LimitsSet:
        changed = await service.set_limits(session, net_id, account, body)
        beyond = service.beyond_limits(changed)
        notice = None
        if beyond:
            notice = (
                "The account is beyond its new " + " and ".join(beyond) + ": it can no longer "
                "move further beyond, only back toward it. Nothing already booked changes."
            )
        return LimitsSet(
            account=Account.model_validate(changed),
            beyond_limits=beyond,
            notice=notice,
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"set_limits:{network}:{account}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.get(
    "/accounts/{account}/limits/history",
    response_model=Page[LimitChange],
    summary="Every change of an account's limits: who, when, before, after, why",
)
@answers(AccountNotFound)
async def get_limit_history(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[LimitChange]:
    """An operator or auditor of the network (or the platform), or a member key for its own account.
    Every change of the account's limits: who, when, before, after and why, a page at a time."""
    accounts.check_can_read(principal, account)
    acc = await accounts.get_account(session, net_id, account)
    rows, next_cursor = await service.history(session, acc.id, cursor=cursor, limit=limit)
    return Page[LimitChange](
        items=[LimitChange.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/accounts/{account}/limits",
    response_model=LimitsAt,
    summary="The limits in force at a moment (default: now)",
)
@answers(AccountNotFound, NoLimitsThen)
async def get_limits(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    at: Annotated[Moment | None, Query(description="ISO 8601 with offset.")] = None,
) -> LimitsAt:
    """An operator or auditor of the network (or the platform), or a member key for its own account.
    The limits in force at a moment (`at`, default now), and the change they come from. Refused with
    404 `no_limits_then` for a moment before the account existed."""
    accounts.check_can_read(principal, account)
    acc = await accounts.get_account(session, net_id, account)
    moment = at or datetime.now(UTC)
    change = await service.limits_at(session, acc.id, moment)
    return LimitsAt(
        account=account,
        at=moment,
        credit_limit=change.credit_limit_after,
        balance_max=change.balance_max_after,
        since=change.changed_at,
        change_id=change.id,
    )


@router.get(
    "/limits/history",
    response_model=list[LimitChange],
    summary="Every change of the network's default limits (operator, auditor)",
)
async def get_default_limit_history(
    network: str, net_id: NetworkId, session: Session, principal: CurrentPrincipal
) -> list[LimitChange]:
    """An operator or auditor of the network (or the platform). Every change of the network's
    default limits: who, when, before, after and why."""
    require_reader(principal)
    return [LimitChange.model_validate(c) for c in await service.default_history(session, net_id)]


@router.post(
    "/limits/apply-defaults",
    response_model=DefaultsApplied,
    summary="Bring existing accounts to the network's defaults; dry run by default (operator)",
)
async def apply_defaults(
    network: str,
    body: DefaultsApply,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Brings existing member accounts to the
    network's default limits, with a `reason`. By default a dry run: it lists each account's change,
    and whether the account would then be beyond its limit, without changing anything."""
    net = await networks.get_network(session, principal, network)
    require_operator(principal)

    async def write() -> DefaultsApplied:
        plan = await service.apply_defaults(session, net, body)
        return DefaultsApplied(
            dry_run=body.dry_run,
            default_credit_limit=net.default_credit_limit,
            default_balance_max=net.default_balance_max,
            changes=plan,
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"apply_defaults:{network}",
        payload=body.model_dump(mode="json"),
        write=write,
    )
