import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.models import Role
from mutualcredit.auth.permissions import require_writer
from mutualcredit.auth.service import Principal
from mutualcredit.db import Session
from mutualcredit.errors import Forbidden
from mutualcredit.events.errors import UnknownEventType
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import Page
from mutualcredit.webhooks import service
from mutualcredit.webhooks.context import Webhooks
from mutualcredit.webhooks.errors import (
    EventNotFound,
    WebhookLimitReached,
    WebhookNotFound,
    WebhookUrlNotAllowed,
)
from mutualcredit.webhooks.schemas import (
    Redelivery,
    RedeliveryCreate,
    Webhook,
    WebhookAttempt,
    WebhookCreate,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/webhooks",
    tags=["webhooks"],
)


def _hooks(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


def _member(principal: Principal) -> str | None:
    """The account whose endpoints a member key manages (None: an operator, auditor or the
    platform, who see every endpoint of the network)."""
    return principal.account_code if principal.role is Role.member else None


@router.post(
    "",
    status_code=201,
    response_model=WebhookWithSecret,
    summary="Register a webhook endpoint; its signing secret is shown once (operator, member)",
)
@answers(WebhookUrlNotAllowed, UnknownEventType, AccountNotFound, WebhookLimitReached, Forbidden)
async def create_webhook(
    network: str,
    net_id: NetworkId,
    body: WebhookCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform), or a member key. Events of the network
    (of `event_types`, or all; about `account`, or all) are POSTed to `url` from now on, signed
    as Standard Webhooks describes with the `secret` in this answer (a replay of the request
    answers without it). A member's endpoint gets the events about its own account only, as
    the member's feed shows them (no other account's balance): `account` is its own (403 for
    another), and it may have MUTUALCREDIT_WEBHOOK_MAX_PER_MEMBER enabled at once (409
    webhook_limit_reached). Its owner is fixed: operators see and manage it too."""
    require_writer(principal)
    hooks = _hooks(request)

    async def write() -> WebhookWithSecret:
        endpoint, secret = await service.create(
            session,
            net_id,
            body,
            actor=principal.actor,
            key=hooks.secret_key,
            allow_private=hooks.settings.outbound_allow_private,
            member=_member(principal),
            max_per_member=hooks.settings.webhook_max_per_member,
        )
        return WebhookWithSecret.model_validate(
            {**Webhook.model_validate(endpoint).model_dump(by_alias=True), "secret": secret}
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"create_webhook:{network}",
        payload=body.model_dump(mode="json"),
        status_code=201,
        write=write,
        secret_fields=("secret",),
    )


@router.get("", response_model=list[Webhook], summary="The network's webhook endpoints")
async def list_webhooks(
    network: str, net_id: NetworkId, session: Session, principal: CurrentPrincipal
) -> list[Webhook]:
    """An operator or auditor of the network (or the platform): every endpoint; a member key:
    its own account's. Oldest first, with the delivery state (cursor, failing since, next
    attempt); never a secret."""
    endpoints = await service.list_endpoints(session, net_id, member=_member(principal))
    return [Webhook.model_validate(e) for e in endpoints]


@router.get("/{webhook}", response_model=Webhook, summary="A webhook endpoint")
@answers(WebhookNotFound)
async def get_webhook(
    network: str,
    net_id: NetworkId,
    webhook: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
) -> Webhook:
    """An operator or auditor of the network (or the platform), or the member key of the
    account whose endpoint it is. The endpoint and its delivery state (cursor, failing since,
    next attempt); never its secret."""
    return Webhook.model_validate(
        await service.get(session, net_id, webhook, member=_member(principal))
    )


@router.patch(
    "/{webhook}",
    response_model=Webhook,
    summary="Change a webhook endpoint: URL, event types, account, enable or disable",
)
@answers(
    WebhookNotFound,
    WebhookUrlNotAllowed,
    UnknownEventType,
    AccountNotFound,
    WebhookLimitReached,
    Forbidden,
)
async def update_webhook(
    network: str,
    net_id: NetworkId,
    webhook: uuid.UUID,
    body: WebhookUpdate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform), or the member key of the account whose
    endpoint it is (which cannot change its account). `enabled: true` resumes deliveries where
    they stopped, at once (and forgets the failures that disabled it)."""
    require_writer(principal)
    hooks = _hooks(request)

    async def write() -> Webhook:
        endpoint = await service.update(
            session,
            net_id,
            webhook,
            body,
            allow_private=hooks.settings.outbound_allow_private,
            member=_member(principal),
            max_per_member=hooks.settings.webhook_max_per_member,
        )
        return Webhook.model_validate(endpoint)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"update_webhook:{network}:{webhook}",
        payload=body.model_dump(mode="json", exclude_unset=True),
        write=write,
    )


@router.post(
    "/{webhook}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="A new signing secret, shown once; the old one still signs for a while",
)
@answers(WebhookNotFound)
async def rotate_webhook_secret(
    network: str,
    net_id: NetworkId,
    webhook: uuid.UUID,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform), or the member key of the account whose
    endpoint it is. Every delivery from now on is signed by
    the new secret and, until `previous_secret_expires_at`
    (MUTUALCREDIT_WEBHOOK_SECRET_GRACE_SECONDS, a day by default), by the old one too, in the
    same `webhook-signature` header: a receiver verifies with either while it changes over."""
    require_writer(principal)
    hooks = _hooks(request)

    async def write() -> WebhookWithSecret:
        endpoint, secret = await service.rotate_secret(
            session,
            net_id,
            webhook,
            key=hooks.secret_key,
            grace=timedelta(seconds=hooks.settings.webhook_secret_grace_seconds),
            member=_member(principal),
        )
        return WebhookWithSecret.model_validate(
            {**Webhook.model_validate(endpoint).model_dump(by_alias=True), "secret": secret}
        )

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"rotate_webhook_secret:{network}:{webhook}",
        payload={},
        write=write,
        secret_fields=("secret",),
    )


@router.post(
    "/{webhook}/redeliveries",
    status_code=202,
    response_model=Redelivery,
    summary="Send an event to the endpoint again",
)
@answers(WebhookNotFound, EventNotFound)
async def redeliver_event(
    network: str,
    net_id: NetworkId,
    webhook: uuid.UUID,
    body: RedeliveryCreate,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform), or the member key of the account whose
    endpoint it is. The event `seq` (one the endpoint subscribes to) is sent again at once,
    with the same `webhook-id`, beside the endpoint's order, and retried on the usual schedule;
    its attempts show in the delivery log."""
    require_writer(principal)

    async def write() -> Redelivery:
        row = await service.redeliver(
            session, net_id, webhook, body.seq, actor=principal.actor, member=_member(principal)
        )
        return Redelivery.model_validate(row)

    return await idempotent(
        session,
        principal,
        idempotency_key,
        scope=f"redeliver_event:{network}:{webhook}",
        payload=body.model_dump(mode="json"),
        status_code=202,
        write=write,
    )


@router.get(
    "/{webhook}/attempts",
    response_model=Page[WebhookAttempt],
    summary="The delivery log of an endpoint, newest first",
)
@answers(WebhookNotFound)
async def list_webhook_attempts(
    network: str,
    net_id: NetworkId,
    webhook: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[WebhookAttempt]:
    """An operator or auditor of the network (or the platform), or the member key of the
    account whose endpoint it is. Every attempt: the event, the attempt's number, the status
    code, the latency, the error, and its outcome."""
    rows, next_cursor = await service.attempts(
        session, net_id, webhook, cursor=cursor, limit=limit, member=_member(principal)
    )
    return Page[WebhookAttempt](
        items=[WebhookAttempt.model_validate(r) for r in rows], next_cursor=next_cursor
    )
