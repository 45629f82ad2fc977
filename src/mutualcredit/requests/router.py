import uuid
from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from mutualcredit.accounts.errors import (
    AccountClosed,
    AccountNotFound,
    AccountReserved,
    AccountSuspended,
)
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.requests import service
from mutualcredit.requests.errors import RequestExpired, RequestNotFound, RequestNotOpen
from mutualcredit.requests.schemas import (
    Approval,
    ApprovalSet,
    PaymentRequest,
    RequestCancel,
    RequestCreate,
    RequestReject,
)
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import Page
from mutualcredit.trades.errors import BalanceMaxExceeded, CreditLimitExceeded, SameAccount

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["payment requests"],
)


@router.post(
    "/requests",
    status_code=201,
    response_model=PaymentRequest,
    summary="Request payment (payee); posts at once if the payer approved the payee",
)
@answers(AccountNotFound, SameAccount, AccountReserved)
async def create_request(
    network: str,
    net_id: NetworkId,
    body: RequestCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The payee's member key, or an operator of the network (or the platform). Asks the payer for
    an amount (an invoice), open until `expires_at` (default 7 days). When the payer has approved
    the payee (up to `max_amount`), it is paid at once if the ledger allows."""

    async def write() -> PaymentRequest:
        return await service.create_request(
            session, principal, net_id, body, default_ttl=request.app.state.request_ttl
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"create_request:{network}",
        payload=body.model_dump(mode="json"),
        write=write,
        status_code=201,
    )


@router.get(
    "/requests", response_model=Page[PaymentRequest], summary="List requests (a member: its own)"
)
@answers(any_key=True)
async def list_requests(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    status: Literal["open", "accepted", "rejected", "cancelled", "expired"] | None = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[PaymentRequest]:
    """An operator or auditor of the network (or the platform): every request; a member key: those
    its account is payer or payee of. Optionally of one status, a page at a time."""
    items, next_cursor = await service.list_requests(
        session, principal, net_id, status=status, cursor=cursor, limit=limit
    )
    return Page[PaymentRequest](items=items, next_cursor=next_cursor)


@router.get("/requests/{request_id}", response_model=PaymentRequest, summary="Read a request")
@answers(RequestNotFound)
async def get_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
) -> PaymentRequest:
    """An operator or auditor of the network (or the platform), or a member key of the payer or the
    payee (to anyone else it is 404 `request_not_found`)."""
    return await service.get_request(session, principal, net_id, request_id)


@router.post(
    "/requests/{request_id}/accept",
    response_model=PaymentRequest,
    summary="Accept a request: the trade posts (payer or operator)",
)
@answers(
    RequestNotFound,
    RequestNotOpen,
    RequestExpired,
    CreditLimitExceeded,
    BalanceMaxExceeded,
    AccountSuspended,
    AccountClosed,
)
async def accept_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The payer's member key, or an operator of the network (or the platform). Pays the request:
    its trade posts, once. Refused with 409 `request_not_open` once answered, `request_expired` past
    its `expires_at`, or the ledger's refusal of the trade (a limit, an account's status)."""

    async def write() -> PaymentRequest:
        return await service.accept_request(session, principal, net_id, request_id)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"accept_request:{network}:{request_id}",
        payload={},
        write=write,
    )


async def _close(
    network: str,
    net_id: uuid.UUID,
    request_id: uuid.UUID,
    outcome: Literal["rejected", "cancelled"],
    body: RequestReject | RequestCancel,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: str | None,
) -> Response:
    async def write() -> PaymentRequest:
        return await service.close_request(
            session, principal, net_id, request_id, outcome, body.reason
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"{outcome}_request:{network}:{request_id}",
        payload=body.model_dump(mode="json"),
        write=write,
    )


@router.post(
    "/requests/{request_id}/reject",
    response_model=PaymentRequest,
    summary="Reject a request, with a reason (payer or operator)",
)
@answers(RequestNotFound, RequestNotOpen, RequestExpired)
async def reject_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    body: RequestReject,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The payer's member key, or an operator of the network (or the platform). Refuses the request,
    with a `reason`. Refused with 409 `request_not_open` once answered and `request_expired` past
    its `expires_at`."""
    return await _close(
        network, net_id, request_id, "rejected", body, session, principal, idempotency_key
    )


@router.post(
    "/requests/{request_id}/cancel",
    response_model=PaymentRequest,
    summary="Cancel a request (payee or operator)",
)
@answers(RequestNotFound, RequestNotOpen, RequestExpired)
async def cancel_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    body: RequestCancel | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The payee's member key, or an operator of the network (or the platform). Withdraws the
    request. Refused with 409 `request_not_open` once answered and `request_expired` past its
    `expires_at`."""
    return await _close(
        network, net_id, request_id, "cancelled", body or RequestCancel(), session, principal,
        idempotency_key,
    )  # fmt: skip


@router.get(
    "/accounts/{account}/approvals",
    response_model=list[Approval],
    summary="Payees this account has approved",
)
@answers(AccountNotFound)
async def list_approvals(
    network: str, net_id: NetworkId, account: str, session: Session, principal: CurrentPrincipal
) -> list[Approval]:
    """An operator or auditor of the network (or the platform), or the payer's member key. The
    payees this account has approved, each with its `max_amount`."""
    return await service.list_approvals(session, principal, net_id, account)


@router.put(
    "/accounts/{account}/approvals/{payee}",
    response_model=Approval,
    summary="Approve a payee: its requests (up to max_amount) post at once (payer or operator)",
)
@answers(AccountNotFound, SameAccount)
async def set_approval(
    network: str,
    net_id: NetworkId,
    account: str,
    payee: str,
    body: ApprovalSet,
    session: Session,
    principal: CurrentPrincipal,
) -> Approval:
    """The payer's member key, or an operator of the network (or the platform). Approves a payee:
    its requests up to `max_amount` (null: any amount) are paid as soon as they are made."""
    return await service.set_approval(session, principal, net_id, account, payee, body)


@router.delete(
    "/accounts/{account}/approvals/{payee}",
    status_code=204,
    summary="Withdraw an approval (payer or operator)",
)
@answers(AccountNotFound)
async def delete_approval(
    network: str,
    net_id: NetworkId,
    account: str,
    payee: str,
    session: Session,
    principal: CurrentPrincipal,
) -> Response:
    """The payer's member key, or an operator of the network (or the platform). Withdraws an
    approval; requests made from then on wait for the payer's answer."""
    await service.delete_approval(session, principal, net_id, account, payee)
    return Response(status_code=204)
