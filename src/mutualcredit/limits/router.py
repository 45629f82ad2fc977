from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.schemas import Account
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.limits import service
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
from mutualcredit.schemas import PROBLEM_RESPONSES, Moment, Page

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["limits"],
    responses=PROBLEM_RESPONSES,
)


@router.put(
    "/accounts/{account}/limits",
    response_model=LimitsSet,
    summary="Set an account's limits, with a reason; optionally until a date (operator)",
)
async def set_limits(
    network: str,
    net_id: NetworkId,
    account: str,
    body: LimitsUpdate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
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
async def limit_history(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[LimitChange]:
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
async def limits_at(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    at: Annotated[Moment | None, Query(description="ISO 8601 with offset.")] = None,
) -> LimitsAt:
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
async def default_history(
    network: str, net_id: NetworkId, session: Session, principal: CurrentPrincipal
) -> list[LimitChange]:
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
