import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from mutualcredit.accounts import service
from mutualcredit.accounts.errors import (
    AccountClosed,
    AccountCodeTaken,
    AccountNotEmpty,
    AccountNotFound,
    AccountReserved,
    TreasuryInUse,
    WriteOffAccountInvalid,
)
from mutualcredit.accounts.models import AccountStatus
from mutualcredit.accounts.schemas import (
    Account,
    AccountClose,
    AccountCreate,
    Statement,
    StatementEntry,
    StatusAction,
    StatusChange,
)
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.db import Session
from mutualcredit.errors import ValidationProblem
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import Moment, Page

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/accounts",
    tags=["accounts"],
)

Since = Annotated[
    Moment | None,
    Query(alias="from", description="Start of the period, inclusive (ISO 8601 with offset)."),
]
Until = Annotated[
    Moment | None,
    Query(alias="to", description="End of the period, exclusive (ISO 8601 with offset)."),
]


def _check_period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since > until:
        raise ValidationProblem("from: must not be after 'to'")


@router.post("", status_code=201, response_model=Account, summary="Open an account (operator)")
@answers(AccountCodeTaken)
async def open_account(
    network: str,
    body: AccountCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Opens an account with a code unique in the
    network; its limits default to the network's. Refused with 409 `account_code_taken` when the
    code is in use."""
    net = await networks.get_network(session, principal, network)
    require_operator(principal)

    async def write() -> Account:
        return Account.model_validate(await service.open_account(session, net, body))

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"open_account:{net.code}",
        payload=body.model_dump(mode="json", exclude_unset=True),
        status_code=201,
        write=write,
    )


@router.get("", response_model=Page[Account], summary="List the network's accounts (operator)")
async def list_accounts(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    status: AccountStatus | None = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[Account]:
    """An operator or auditor of the network (or the platform). The network's accounts with their
    balances and limits, optionally of one status, a page at a time."""
    require_reader(principal)
    rows, next_cursor = await service.list_accounts(
        session, net_id, status=status, cursor=cursor, limit=limit
    )
    return Page[Account](items=[Account.model_validate(a) for a in rows], next_cursor=next_cursor)


@router.get(
    "/{account}",
    response_model=Account,
    summary="Read an account: balance, holds, limits, what it can still pay",
)
@answers(AccountNotFound)
async def get_account(
    network: str, net_id: NetworkId, account: str, session: Session, principal: CurrentPrincipal
) -> Account:
    """An operator or auditor of the network (or the platform), or a member key for its own account.
    Balance, pending debits and credits, limits, and what the account can still pay (`available`)
    and receive (`headroom`)."""
    service.check_can_read(principal, account)
    return Account.model_validate(await service.get_account(session, net_id, account))


async def _change_status(
    network: str,
    net_id: uuid.UUID,
    account: str,
    action: StatusAction,
    body: StatusChange | AccountClose,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: str | None,
) -> Response:
    require_operator(principal)
    write_off_to = body.write_off_to if isinstance(body, AccountClose) else None

    async def write() -> Account:
        changed = await service.change_status(
            session, principal, net_id, account, action, body.reason, write_off_to
        )
        return Account.model_validate(changed)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"{action}:{network}:{account}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.post(
    "/{account}/suspend",
    response_model=Account,
    summary="Suspend an account: no trades in or out (operator)",
)
@answers(AccountNotFound, AccountClosed, AccountReserved)
async def suspend_account(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    body: StatusChange | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). No trade moves money in or out of the account
    until it is reactivated; its holds stay. An optional `reason` is kept on record. Refused with
    409 `account_closed` for a closed account."""
    return await _change_status(
        network, net_id, account, "suspend", body or StatusChange(), session, principal,
        idempotency_key,
    )  # fmt: skip


@router.post("/{account}/reactivate", response_model=Account, summary="Reactivate (operator)")
@answers(AccountNotFound, AccountClosed, AccountReserved)
async def reactivate_account(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    body: StatusChange | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). A suspended account trades again. Refused with
    409 `account_closed` for a closed account: closing is final."""
    return await _change_status(
        network, net_id, account, "reactivate", body or StatusChange(), session, principal,
        idempotency_key,
    )  # fmt: skip


@router.post(
    "/{account}/close",
    response_model=Account,
    summary="Close an account for good: at zero with no holds, or with a write-off (operator)",
)
@answers(
    AccountNotFound,
    AccountClosed,
    AccountNotEmpty,
    WriteOffAccountInvalid,
    AccountReserved,
    TreasuryInUse,
)
async def close_account(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    body: AccountClose | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Closes the account for good. It needs a zero
    balance and no holds (409 `account_not_empty`), or `write_off_to` another active system account,
    which takes over the balance in a recorded write-off trade (with a `reason`; 409
    `write_off_account_invalid` for another kind of account). The treasury of a fee rule that has
    not ended is not closed (409 `treasury_in_use`, with `fee_rule`)."""
    return await _change_status(
        network, net_id, account, "close", body or AccountClose(), session, principal,
        idempotency_key,
    )  # fmt: skip


@router.get(
    "/{account}/entries",
    response_model=Page[StatementEntry],
    summary="An account's entries in booking order",
)
@answers(AccountNotFound)
async def list_entries(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[StatementEntry]:
    """An operator or auditor of the network (or the platform), or a member key for its own account.
    The account's entries in booking order, each with the balance after it, optionally within `from`
    and `to`, a page at a time."""
    _check_period(since, until)
    service.check_can_read(principal, account)
    acc = await service.get_account(session, net_id, account)
    rows, next_cursor = await service.list_entries(
        session, acc.id, since=since, until=until, cursor=cursor, limit=limit
    )
    return Page[StatementEntry](items=rows, next_cursor=next_cursor)


@router.get(
    "/{account}/statement",
    response_model=Statement,
    summary="A statement for a period: opening and closing balance, totals, entries",
)
@answers(AccountNotFound)
async def get_statement(
    network: str,
    net_id: NetworkId,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Statement:
    """An operator or auditor of the network (or the platform), or a member key for its own account.
    The opening and closing balance of a period (`from`, `to`), its totals, and its entries a page
    at a time."""
    _check_period(since, until)
    service.check_can_read(principal, account)
    acc = await service.get_account(session, net_id, account)
    summary = await service.statement_summary(session, acc.id, since, until)
    rows, next_cursor = await service.list_entries(
        session, acc.id, since=since, until=until, cursor=cursor, limit=limit
    )
    return Statement(
        account=account,
        since=since,
        until=until,
        entries=rows,
        next_cursor=next_cursor,
        **summary,
    )
