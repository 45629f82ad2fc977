from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.db import Session
from mutualcredit.fees import service
from mutualcredit.fees.errors import FeeRuleExists, FeeRuleNotFound, FeeRuleOverlap, TreasuryInvalid
from mutualcredit.fees.schemas import (
    FeeCharge,
    FeePreview,
    FeeRule,
    FeeRuleChange,
    FeeRuleCreate,
    FeeRuleUpdate,
)
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import Page

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["fees"],
)


@router.post(
    "/fee-rules",
    status_code=201,
    response_model=FeeRule,
    summary="Make a fee rule (levy, membership or demurrage), with a reason; or try it (operator)",
    responses={
        200: {
            "model": FeePreview,
            "description": "A dry run: the rule as it would be, and what it would charge. "
            "Nothing is written.",
        }
    },
)
@answers(TreasuryInvalid, FeeRuleExists, FeeRuleOverlap)
async def create_fee_rule(
    network: str,
    net_id: NetworkId,
    body: FeeRuleCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Makes a rule that charges accounts of one
    kind into a treasury (an active system account), with a `reason` kept in its history: a
    `levy` on each trade (a `rate`, a fixed `amount`, or both, with an optional `minimum` and
    `maximum`, on the payer, the payee or both), a `membership` fee per `period`, or `demurrage`
    per `period` on balances above a `threshold` or beyond the credit limit. Every charge is a
    trade of kind `fee` into the treasury. With `"dry_run": true`, 200 and the rule as it would
    be, with what it would charge each account (as `GET .../preview`), and nothing written.

    Refused with 422 `validation_error` for a field of another kind of rule, a rate above 1/1,
    a `minimum` above the `maximum`, a `starts_at` in the past or an `ends_at` before it; 422
    `treasury_invalid` for a treasury that is unknown, not a system account, or not active; 409
    `fee_rule_exists` for a code in use, and `fee_rule_overlap` (with `overlaps`) when another
    rule of the kind charges the same accounts at the same time."""
    status_code = 200 if body.dry_run else 201

    async def write() -> FeeRule | FeePreview:
        return await service.create_rule(session, principal, net_id, body)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"create_fee_rule:{network}",
        payload=body.model_dump(mode="json", exclude_unset=True),
        status_code=status_code,
        write=write,
    )


@router.get(
    "/fee-rules",
    response_model=Page[FeeRule],
    summary="List the network's fee rules (a member: those that may charge it)",
)
async def list_fee_rules(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[FeeRule]:
    """An operator or auditor of the network (or the platform): every rule, in force, to come or
    ended; a member key: the rules that charge accounts of its account's kind. In code order, a
    page at a time."""
    items, next_cursor = await service.list_rules(
        session, principal, net_id, cursor=cursor, limit=limit
    )
    return Page[FeeRule](items=items, next_cursor=next_cursor)


@router.get("/fee-rules/{code}", response_model=FeeRule, summary="Read a fee rule")
@answers(FeeRuleNotFound)
async def get_fee_rule(
    network: str, net_id: NetworkId, code: str, session: Session, principal: CurrentPrincipal
) -> FeeRule:
    """An operator or auditor of the network (or the platform), or a member key when the rule
    charges accounts of its account's kind (to another member it is 404 `fee_rule_not_found`)."""
    return await service.get_rule(session, principal, net_id, code)


@router.patch(
    "/fee-rules/{code}",
    response_model=FeeRule,
    summary="Change a fee rule, with a reason (operator)",
)
@answers(FeeRuleNotFound, TreasuryInvalid, FeeRuleOverlap)
async def update_fee_rule(
    network: str,
    net_id: NetworkId,
    code: str,
    body: FeeRuleUpdate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Changes the fields sent (any but `code` and
    `kind`), with a `reason` kept in the rule's history; end a rule by setting its `ends_at`. A
    change applies to charges made after it: a periodic run already begun charges its boundary as
    the rule stood when it began. Refused with 422 `validation_error` for a field of another kind,
    an `ends_at` in the past, a `starts_at` moved once the rule has started or into the past, or a
    rule that has ended (make a new one); 422 `treasury_invalid`; 409 `fee_rule_overlap`."""

    async def write() -> FeeRule:
        return await service.update_rule(session, principal, net_id, code, body)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"update_fee_rule:{network}:{code}",
        payload=body.model_dump(mode="json", exclude_unset=True),
        write=write,
    )


@router.get(
    "/fee-rules/{code}/history",
    response_model=Page[FeeRuleChange],
    summary="Every change of a fee rule: who, when, before, after, why (operator, auditor)",
)
@answers(FeeRuleNotFound)
async def get_fee_rule_history(
    network: str,
    net_id: NetworkId,
    code: str,
    session: Session,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[FeeRuleChange]:
    """An operator or auditor of the network (or the platform). The rule's creation and every
    change of it, oldest first: its fields before and after, the reason, who and when."""
    items, next_cursor = await service.history(
        session, principal, net_id, code, cursor=cursor, limit=limit
    )
    return Page[FeeRuleChange](items=items, next_cursor=next_cursor)


@router.get(
    "/fee-rules/{code}/preview",
    response_model=FeePreview,
    summary="What a fee rule would charge each account (operator, auditor)",
)
@answers(FeeRuleNotFound)
async def preview_fee_rule(
    network: str, net_id: NetworkId, code: str, session: Session, principal: CurrentPrincipal
) -> FeePreview:
    """An operator or auditor of the network (or the platform). A dry run of the rule: a periodic
    rule, each account's charge at the next boundary (`due_at`) on its balance now; a levy, what it
    would have charged each account on the last 30 days' trades. Accounts charged nothing are left
    out."""
    return await service.preview(session, principal, net_id, code)


@router.get(
    "/fee-charges",
    response_model=Page[FeeCharge],
    summary="The charges fee rules made, newest first (a member: its own)",
)
@answers(FeeRuleNotFound, AccountNotFound)
async def list_fee_charges(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    rule: Annotated[str | None, Query(max_length=64, description="A rule's code.")] = None,
    account: Annotated[str | None, Query(max_length=64, description="An account's code.")] = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[FeeCharge]:
    """An operator or auditor of the network (or the platform): every charge, or those of one
    `rule` or `account`; a member key: its own account's only (403 for another `account`). Each
    charge names its trade (`trade_id`, null when nothing was booked) and its cause: the trade
    levied on, or the period boundary charged. Newest first, a page at a time."""
    items, next_cursor = await service.list_charges(
        session, principal, net_id, rule=rule, account=account, cursor=cursor, limit=limit
    )
    return Page[FeeCharge](items=items, next_cursor=next_cursor)
