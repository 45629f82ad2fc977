import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.db import Session
from mutualcredit.events.errors import UnknownEventType
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.responses import IdempotencyKey, idempotent
from mutualcredit.schemas import Page
from mutualcredit.webhooks import service
from mutualcredit.webhooks.context import Webhooks
from mutualcredit.webhooks.errors import EventNotFound, WebhookNotFound, WebhookUrlNotAllowed
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


@router.post(
    "",
    status_code=201,
    response_model=WebhookWithSecret,
    summary="Register a webhook endpoint; its signing secret is shown once (operator)",
)
@answers(WebhookUrlNotAllowed, UnknownEventType, AccountNotFound)
async def create_webhook(
    network: str,
    net_id: NetworkId,
    body: WebhookCreate,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An operator of the network (or the platform). Events of the network (of `event_types`,
    or all; about `account`, or all) are POSTed to `url` from now on, signed as Standard
    Webhooks describes with the `secret` in this answer (a replay of the request answers
    without it). Members cannot register endpoints: a URL the service calls on the network's
    behalf is the operator's decision, and a member reads its own events from the feed."""
    require_operator(principal)
    hooks = _hooks(request)

    async def write() -> WebhookWithSecret:
        endpoint, secret = await service.create(
            session,
            net_id,
            body,
            actor=principal.actor,
            key=hooks.secret_key,
            allow_private=hooks.settings.outbound_allow_private,
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
    """An operator or auditor of the network (or the platform). Every endpoint, oldest first,
    with its delivery state (cursor, failing since, next attempt); never a secret."""
    require_reader(principal)
    return [Webhook.model_validate(e) for e in await service.list_endpoints(session, net_id)]


@router.get("/{webhook}", response_model=Webhook, summary="A webhook endpoint")
@answers(WebhookNotFound)
async def get_webhook(
    network: str,
    net_id: NetworkId,
    webhook: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
) -> Webhook:
    """An operator or auditor of the network (or the platform). The endpoint and its delivery
    state (cursor, failing since, next attempt); never its secret."""
    require_reader(principal)
    return Webhook.model_validate(await service.get(session, net_id, webhook))


@router.patch(
    "/{webhook}",
    response_model=Webhook,
    summary="Change a webhook endpoint: URL, event types, account, enable or disable (operator)",
)
@answers(WebhookNotFound, WebhookUrlNotAllowed, UnknownEventType, AccountNotFound)
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
    """An operator of the network (or the platform). `enabled: true` resumes deliveries where
    they stopped, at once (and forgets the failures that disabled it)."""
    require_operator(principal)
    hooks = _hooks(request)

    async def write() -> Webhook:
        endpoint = await service.update(
            session,
            net_id,
            webhook,
            body,
            allow_private=hooks.settings.outbound_allow_private,
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
    summary="A new signing secret, shown once; the old one still signs for a while (operator)",
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
    """An operator of the network (or the platform). Every delivery from now on is signed by
    the new secret and, until `previous_secret_expires_at`
    (MUTUALCREDIT_WEBHOOK_SECRET_GRACE_SECONDS, a day by default), by the old one too, in the
    same `webhook-signature` header: a receiver verifies with either while it changes over."""
    require_operator(principal)
    hooks = _hooks(request)

    async def write() -> WebhookWithSecret:
        endpoint, secret = await service.rotate_secret(
            session,
            net_id,
            webhook,
            key=hooks.secret_key,
            grace=timedelta(seconds=hooks.settings.webhook_secret_grace_seconds),
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
    summary="Send an event to the endpoint again (operator)",
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
    """An operator of the network (or the platform). The event `seq` (one the endpoint
    subscribes to) is sent again at once, with the same `webhook-id`, beside the endpoint's
    order, and retried on the usual schedule; its attempts show in the delivery log."""
    require_operator(principal)

    async def write() -> Redelivery:
        row = await service.redeliver(session, net_id, webhook, body.seq, actor=principal.actor)
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
    summary="The delivery log of an endpoint, newest first (operator, auditor)",
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
    """An operator or auditor of the network (or the platform). Every attempt: the event, the
    attempt's number, the status code, the latency, the error, and its outcome."""
    require_reader(principal)
    rows, next_cursor = await service.attempts(session, net_id, webhook, cursor=cursor, limit=limit)
    return Page[WebhookAttempt](
        items=[WebhookAttempt.model_validate(r) for r in rows], next_cursor=next_cursor
    )
