import uuid
from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.requests import service
from mutualcredit.requests.schemas import (
    Approval,
    ApprovalSet,
    PaymentRequest,
    RequestCancel,
    RequestCreate,
    RequestReject,
)
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import PROBLEM_RESPONSES, Page

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["payment requests"],
    responses=PROBLEM_RESPONSES,
)


@router.post(
    "/requests",
    status_code=201,
    response_model=PaymentRequest,
    summary="Request payment (payee); posts at once if the payer approved the payee",
)
async def create_request(
    network: str,
    net_id: NetworkId,
    body: RequestCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
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
async def list_requests(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    status: Literal["open", "accepted", "rejected", "cancelled", "expired"] | None = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[PaymentRequest]:
    items, next_cursor = await service.list_requests(
        session, principal, net_id, status=status, cursor=cursor, limit=limit
    )
    return Page[PaymentRequest](items=items, next_cursor=next_cursor)


@router.get("/requests/{request_id}", response_model=PaymentRequest, summary="Read a request")
async def get_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
) -> PaymentRequest:
    return await service.get_request(session, principal, net_id, request_id)


@router.post(
    "/requests/{request_id}/accept",
    response_model=PaymentRequest,
    summary="Accept a request: the trade posts (payer or operator)",
)
async def accept_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
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
async def reject_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    body: RequestReject,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _close(
        network, net_id, request_id, "rejected", body, session, principal, idempotency_key
    )


@router.post(
    "/requests/{request_id}/cancel",
    response_model=PaymentRequest,
    summary="Cancel a request (payee or operator)",
)
async def cancel_request(
    network: str,
    net_id: NetworkId,
    request_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    body: RequestCancel | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    return await _close(
        network, net_id, request_id, "cancelled", body or RequestCancel(), session, principal,
        idempotency_key,
    )  # fmt: skip


@router.get(
    "/accounts/{account}/approvals",
    response_model=list[Approval],
    summary="Payees this account has approved",
)
async def list_approvals(
    network: str, net_id: NetworkId, account: str, session: Session, principal: CurrentPrincipal
) -> list[Approval]:
    return await service.list_approvals(session, principal, net_id, account)


@router.put(
    "/accounts/{account}/approvals/{payee}",
    response_model=Approval,
    summary="Approve a payee: its requests (up to max_amount) post at once (payer or operator)",
)
async def set_approval(
    network: str,
    net_id: NetworkId,
    account: str,
    payee: str,
    body: ApprovalSet,
    session: Session,
    principal: CurrentPrincipal,
) -> Approval:
    return await service.set_approval(session, principal, net_id, account, payee, body)


@router.delete(
    "/accounts/{account}/approvals/{payee}",
    status_code=204,
    summary="Withdraw an approval (payer or operator)",
)
async def delete_approval(
    network: str,
    net_id: NetworkId,
    account: str,
    payee: str,
    session: Session,
    principal: CurrentPrincipal,
) -> Response:
    await service.delete_approval(session, principal, net_id, account, payee)
    return Response(status_code=204)
