"""Payment requests (invoices): a payee asks, the payer accepts, rejects or lets it expire.

Who may do what: the payee (or an operator) creates and cancels; the payer (or an operator)
accepts and rejects; both parties read. A payer's approval of a payee makes that payee's
requests (up to an optional amount) post at once.

Exactly once: accepting locks the request row, and its trade has the natural key
`request:<id>`. A refused acceptance (a limit, a suspension) leaves the request open and is not
remembered, so the payer can accept later, when it has room.
Lock order: the request row, then the accounts (inside mc_create_trade).
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.errors import AccountReserved
from mutualcredit.accounts.models import RESERVED_KINDS, Account
from mutualcredit.audit.context import explain
from mutualcredit.auth.models import Role
from mutualcredit.auth.permissions import require_writer
from mutualcredit.auth.service import Principal
from mutualcredit.errors import Forbidden, ValidationProblem
from mutualcredit.hashing import request_hash
from mutualcredit.pagination import after_time_and_id, page
from mutualcredit.requests.errors import RequestExpired, RequestNotFound, RequestNotOpen
from mutualcredit.requests.models import PayeeApproval
from mutualcredit.requests.models import PaymentRequest as Request
from mutualcredit.requests.schemas import (
    Approval,
    ApprovalSet,
    PaymentRequest,
    RequestCreate,
)
from mutualcredit.trades import repository as trades
from mutualcredit.trades.errors import SameAccount, ledger_refusal
from mutualcredit.trades.repository import Booking


async def _view(session: AsyncSession, request: Request) -> PaymentRequest:
    codes = await accounts.codes_by_id(session, [request.payer_id, request.payee_id])
    return PaymentRequest(
        id=request.id,
        payer=codes[request.payer_id],
        payee=codes[request.payee_id],
        amount=request.amount,
        description=request.description,
        status=request.status,
        reason=request.reason,
        trade_id=request.trade_id,
        created_by=request.created_by,
        expires_at=request.expires_at,
        created_at=request.created_at,
        resolved_at=request.resolved_at,
    )


async def create_request(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    data: RequestCreate,
    *,
    default_ttl: timedelta,
) -> PaymentRequest:
    require_writer(principal)
    if principal.role is Role.member and data.payee != principal.account_code:
        raise Forbidden("A member key may only request payment to its own account")
    if data.payer == data.payee:
        raise SameAccount()
    now = datetime.now(UTC)
    expires_at = data.expires_at or now + default_ttl
    if expires_at <= now:
        raise ValidationProblem("expires_at: must be in the future")
    payer = await accounts.get_account(session, network_id, data.payer)
    payee = await accounts.get_account(session, network_id, data.payee)
    for party in (payer, payee):
        if party.kind in RESERVED_KINDS:
            # Paying one would be refused (account_reserved): refused now, not when accepted.
            raise AccountReserved(account=party.code)
    request = Request(
        network_id=network_id,
        payer_id=payer.id,
        payee_id=payee.id,
        amount=data.amount,
        description=data.description,
        created_by=principal.actor,
        expires_at=expires_at,
    )
    session.add(request)
    await session.flush()
    await session.refresh(request)

    approval = await session.get(PayeeApproval, (payer.id, payee.id))
    if approval is not None and (approval.max_amount is None or data.amount <= approval.max_amount):
        # Pre-approved: pay now if the ledger allows; otherwise it simply stays open.
        await _pay(session, principal, request, payer.code, payee.code, refusal_is_error=False)
    return await _view(session, request)


async def _locked(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, request_id: uuid.UUID
) -> tuple[Request, Account, Account]:
    request = await session.scalar(
        select(Request)
        .where(Request.network_id == network_id, Request.id == request_id)
        .with_for_update()
    )
    if request is None:
        raise RequestNotFound(payment_request_id=str(request_id))
    payer = await session.get(Account, request.payer_id)
    payee = await session.get(Account, request.payee_id)
    assert payer is not None
    assert payee is not None
    if principal.role is Role.member and principal.account_code not in (payer.code, payee.code):
        raise RequestNotFound(payment_request_id=str(request_id))
    return request, payer, payee


async def _open(session: AsyncSession, request: Request) -> None:
    """Refuses unless open. An overdue request is expired now (committed) and refused; it
    answers the same whether this call or the background job expired it."""
    if request.status == "expired":
        raise RequestExpired(payment_request_id=str(request.id))
    if request.status != "open":
        raise RequestNotOpen(
            f"The request is {request.status}",
            payment_request_id=str(request.id),
            request_status=request.status,
        )
    if request.expires_at <= datetime.now(UTC):
        request.status = "expired"
        request.resolved_at = datetime.now(UTC)
        await session.flush()
        raise RequestExpired(payment_request_id=str(request.id), commit=True)


async def _pay(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    payer: str,
    payee: str,
    *,
    refusal_is_error: bool,
) -> None:
    result = await trades.create_trade(
        session,
        Booking(
            network_id=request.network_id,
            key=f"request:{request.id}",
            request_hash=request_hash("request", {"request": str(request.id)}),
            payer=payer,
            payee=payee,
            amount=request.amount,
            pending=False,
            expires_at=None,
            description=request.description,
            external_ref=f"request:{request.id}",
            metadata={},
            actor=principal.actor,
            kind="request",
            remember_refusal=False,
        ),
    )
    if not result.refused:
        assert result.trade is not None
        request.status = "accepted"
        request.trade_id = uuid.UUID(result.trade["id"])
        request.resolved_at = datetime.now(UTC)
        await session.flush()
        return
    if refusal_is_error:
        raise ledger_refusal(result)


async def accept_request(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, request_id: uuid.UUID
) -> PaymentRequest:
    require_writer(principal)
    request, payer, payee = await _locked(session, principal, network_id, request_id)
    if principal.role is Role.member and principal.account_code != payer.code:
        raise Forbidden("Only the payer (or an operator) accepts a request")
    await _open(session, request)
    await _pay(session, principal, request, payer.code, payee.code, refusal_is_error=True)
    return await _view(session, request)


async def close_request(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    request_id: uuid.UUID,
    outcome: str,
    reason: str | None,
) -> PaymentRequest:
    """Rejects (by the payer) or cancels (by the payee); operators may do either."""
    require_writer(principal)
    request, payer, payee = await _locked(session, principal, network_id, request_id)
    party = payer if outcome == "rejected" else payee
    if principal.role is Role.member and principal.account_code != party.code:
        who = "payer" if outcome == "rejected" else "payee"
        raise Forbidden(f"Only the {who} (or an operator) may do this")
    await _open(session, request)
    await explain(session, reason)
    request.status = outcome
    request.reason = reason
    request.resolved_at = datetime.now(UTC)
    await session.flush()
    return await _view(session, request)


async def get_request(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, request_id: uuid.UUID
) -> PaymentRequest:
    request = await session.scalar(
        select(Request).where(Request.network_id == network_id, Request.id == request_id)
    )
    if request is None:
        raise RequestNotFound(payment_request_id=str(request_id))
    view = await _view(session, request)
    if principal.role is Role.member and principal.account_code not in (view.payer, view.payee):
        raise RequestNotFound(payment_request_id=str(request_id))
    return view


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[PaymentRequest], str | None]:
    query = select(Request).where(Request.network_id == network_id)
    if principal.role is Role.member:
        assert principal.account_id is not None
        own = principal.account_id
        query = query.where((Request.payer_id == own) | (Request.payee_id == own))
    if status is not None:
        query = query.where(Request.status == status)
    after = after_time_and_id(cursor, uuid.UUID)
    if after is not None:
        query = query.where(tuple_(Request.created_at, Request.id) > after)
    rows = list(
        await session.scalars(query.order_by(Request.created_at, Request.id).limit(limit + 1))
    )
    requests, next_cursor = page(rows, limit, lambda r: (r.created_at.isoformat(), str(r.id)))
    return [await _view(session, r) for r in requests], next_cursor


def _check_payer(principal: Principal, payer: str) -> None:
    require_writer(principal)
    if principal.role is Role.member and principal.account_code != payer:
        raise Forbidden("A member key manages only its own account's approvals")


async def set_approval(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    payer: str,
    payee: str,
    data: ApprovalSet,
) -> Approval:
    _check_payer(principal, payer)
    if payer == payee:
        raise SameAccount()
    payer_account = await accounts.get_account(session, network_id, payer)
    payee_account = await accounts.get_account(session, network_id, payee)
    approval = await session.get(PayeeApproval, (payer_account.id, payee_account.id))
    if approval is None:
        approval = PayeeApproval(
            network_id=network_id,
            payer_id=payer_account.id,
            payee_id=payee_account.id,
            max_amount=data.max_amount,
            created_by=principal.actor,
        )
        session.add(approval)
    else:
        approval.max_amount = data.max_amount
    await session.flush()
    await session.refresh(approval)
    return Approval(
        payer=payer,
        payee=payee,
        max_amount=approval.max_amount,
        created_by=approval.created_by,
        created_at=approval.created_at,
    )


async def delete_approval(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, payer: str, payee: str
) -> None:
    _check_payer(principal, payer)
    payer_account = await accounts.get_account(session, network_id, payer)
    payee_account = await accounts.get_account(session, network_id, payee)
    approval = await session.get(PayeeApproval, (payer_account.id, payee_account.id))
    if approval is not None:
        await session.delete(approval)
        await session.flush()


async def list_approvals(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, payer: str
) -> list[Approval]:
    accounts.check_can_read(principal, payer)
    payer_account = await accounts.get_account(session, network_id, payer)
    rows = list(
        await session.scalars(
            select(PayeeApproval).where(PayeeApproval.payer_id == payer_account.id)
        )
    )
    codes = await accounts.codes_by_id(session, [r.payee_id for r in rows])
    return [
        Approval(
            payer=payer,
            payee=codes[r.payee_id],
            max_amount=r.max_amount,
            created_by=r.created_by,
            created_at=r.created_at,
        )
        for r in rows
    ]
