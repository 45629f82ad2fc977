"""Managing webhook endpoints: create (the secret shown once), change, rotate the secret, ask
for a redelivery, read the delivery log. Delivery itself is delivery.py's.

Whose endpoints: an operator (or the platform) manages every endpoint of its network; a member
key only those of its own account (`member`, the account's code, passed by the router): it
registers them for that account's events, in a member's view, up to
MUTUALCREDIT_WEBHOOK_MAX_PER_MEMBER enabled at once, and any other endpoint is simply not there
for it (webhook_not_found). An endpoint's owner never changes, and neither does the account of a
member's endpoint (the database holds it: webhook_endpoints_member_own_account_check).

A new endpoint starts at the network's event head: it receives what is sealed after it was
made, not the network's history (the feed is there for that). Every change is audited by the
database (trigger webhook_endpoints_audit), secrets and delivery bookkeeping left out.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit import egress
from mutualcredit.audit.models import AuditRecord
from mutualcredit.errors import Forbidden
from mutualcredit.events import service as events
from mutualcredit.pagination import after_int, page
from mutualcredit.webhooks import signing
from mutualcredit.webhooks.errors import (
    EventNotFound,
    WebhookLimitReached,
    WebhookNotFound,
    WebhookUrlNotAllowed,
)
from mutualcredit.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookRedelivery
from mutualcredit.webhooks.schemas import WebhookCreate, WebhookUpdate


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuses, when it is saved, a URL whose host is an address the egress policy refuses (a
    host name is checked again at every connection, after DNS)."""
    if egress.refused_at_sight(url, allow_private=allow_private):
        raise WebhookUrlNotAllowed(
            "url: not an address this service may call (loopback, private, link-local or"
            " reserved; see MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE)"
        )


def check_types(types: list[str] | None) -> list[str] | None:
    """The types, each checked against events.service.EVENT_TYPES (unknown_event_type)."""
    if types is None:
        return None
    events.check_types(types)
    return sorted(set(types))


async def head_seq(session: AsyncSession, network_id: uuid.UUID) -> int:
    """The seq of the network's last sealed event record (events are sealed audit records)."""
    found = await session.scalar(
        select(func.max(AuditRecord.seq)).where(AuditRecord.network_id == network_id)
    )
    return int(found or 0)


async def _within_member_limit(
    session: AsyncSession,
    network_id: uuid.UUID,
    member: str,
    most: int,
    *,
    besides: uuid.UUID | None = None,
) -> None:
    """Refuses one more enabled endpoint for `member` beyond `most`. Two requests at once are
    counted one after the other (a transaction-scoped lock per account), so they cannot both
    slip under the limit."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
        {"name": f"webhooks:{network_id}:{member}"},
    )
    query = select(func.count()).where(
        WebhookEndpoint.network_id == network_id,
        WebhookEndpoint.member_account == member,
        WebhookEndpoint.status == "enabled",
    )
    if besides is not None:
        query = query.where(WebhookEndpoint.id != besides)
    if (await session.scalar(query) or 0) >= most:
        raise WebhookLimitReached(
            f"Account {member!r} may have at most {most} enabled webhook endpoints: disable one"
            " first (MUTUALCREDIT_WEBHOOK_MAX_PER_MEMBER)",
            limit=most,
        )


async def create(
    session: AsyncSession,
    network_id: uuid.UUID,
    data: WebhookCreate,
    *,
    actor: str,
    key: bytes,
    allow_private: bool,
    member: str | None = None,
    max_per_member: int = 0,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned here only); a member's (`member`: its account
    code) is for its own account's events."""
    check_url(data.url, allow_private=allow_private)
    account = data.account
    if member is not None:
        if account not in (None, member):
            raise Forbidden("A member key registers endpoints for its own account only")
        account = member
        await _within_member_limit(session, network_id, member, max_per_member)
    if account is not None:
        await events.require_account(session, network_id, account)
    endpoint_id = uuid.uuid4()
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        network_id=network_id,
        url=data.url,
        description=data.description,
        event_types=check_types(data.event_types),
        account=account,
        member_account=member,
        secret_sealed=signing.seal(secret, endpoint_id, 1, key),
        secret_version=1,
        created_by=actor,
        cursor=await head_seq(session, network_id),
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def get(
    session: AsyncSession,
    network_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    member: str | None = None,
    for_update: bool = False,
) -> WebhookEndpoint:
    """The endpoint; for a member (`member`), only one of its own."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.network_id == network_id, WebhookEndpoint.id == endpoint_id
    )
    if member is not None:
        query = query.where(WebhookEndpoint.member_account == member)
    if for_update:
        query = query.with_for_update()
    endpoint = await session.scalar(query)
    if endpoint is None:
        raise WebhookNotFound(f"No webhook endpoint {endpoint_id} in this network")
    return endpoint


async def list_endpoints(
    session: AsyncSession, network_id: uuid.UUID, *, member: str | None = None
) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.network_id == network_id)
    if member is not None:
        query = query.where(WebhookEndpoint.member_account == member)
    query = query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return list(await session.scalars(query))


async def update(
    session: AsyncSession,
    network_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    data: WebhookUpdate,
    *,
    allow_private: bool,
    member: str | None = None,
    max_per_member: int = 0,
) -> WebhookEndpoint:
    endpoint = await get(session, network_id, endpoint_id, member=member, for_update=True)
    owner = endpoint.member_account
    if owner is not None and "account" in data.model_fields_set and data.account != owner:
        raise Forbidden(f"This endpoint is account {owner!r}'s: it receives that account's events")
    if data.url is not None:
        check_url(data.url, allow_private=allow_private)
        endpoint.url = data.url
    if data.all_event_types:
        endpoint.event_types = None
    elif data.event_types is not None:
        endpoint.event_types = check_types(data.event_types)
    if "account" in data.model_fields_set:
        if data.account is not None:
            await events.require_account(session, network_id, data.account)
        endpoint.account = data.account
    if data.description is not None:
        endpoint.description = data.description
    if data.enabled is True and endpoint.status == "disabled":
        if owner is not None:
            await _within_member_limit(
                session, network_id, owner, max_per_member, besides=endpoint.id
            )
        endpoint.status = "enabled"
        endpoint.status_reason = None
        endpoint.failing_since = None
        endpoint.attempt = 0
        endpoint.next_attempt_at = datetime.now(UTC)
    elif data.enabled is False and endpoint.status == "enabled":
        endpoint.status = "disabled"
        endpoint.status_reason = (
            "disabled by an operator" if member is None else "disabled by its member"
        )
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def rotate_secret(
    session: AsyncSession,
    network_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    key: bytes,
    grace: timedelta,
    member: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the one it replaces still signs too, for `grace` (a receiver can verify
    with either while it changes over). A second rotation within the grace ends the first's."""
    endpoint = await get(session, network_id, endpoint_id, member=member, for_update=True)
    old = signing.unseal(endpoint.secret_sealed, endpoint.id, endpoint.secret_version, key)
    version = endpoint.secret_version + 1
    secret = signing.new_secret()
    # The previous secret is sealed again under the version it now serves as (previous of
    # `version`), so that it cannot be swapped back in as the current one.
    endpoint.previous_sealed = signing.seal(old, endpoint.id, -version, key)
    endpoint.previous_secret_expires_at = datetime.now(UTC) + grace
    endpoint.secret_sealed = signing.seal(secret, endpoint.id, version, key)
    endpoint.secret_version = version
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def redeliver(
    session: AsyncSession,
    network_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    seq: int,
    *,
    actor: str,
    member: str | None = None,
) -> WebhookRedelivery:
    """Queues an event the endpoint subscribes to, to be sent again, outside its order."""
    endpoint = await get(session, network_id, endpoint_id, member=member)
    found = await events.read(
        session,
        network_id,
        after=seq - 1,
        types=endpoint.event_types,
        account=endpoint.account,
        limit=1,
    )
    if not found or found[0].seq != seq:
        raise EventNotFound(f"No event {seq} that this endpoint subscribes to")
    redelivery = WebhookRedelivery(
        network_id=network_id, endpoint_id=endpoint.id, seq=seq, requested_by=actor
    )
    session.add(redelivery)
    await session.flush()
    await session.refresh(redelivery)
    return redelivery


async def attempts(
    session: AsyncSession,
    network_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
    member: str | None = None,
) -> tuple[list[WebhookAttempt], str | None]:
    """The delivery log of an endpoint, newest first."""
    await get(session, network_id, endpoint_id, member=member)
    query = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
    before = after_int(cursor)
    if before is not None:
        query = query.where(WebhookAttempt.id < before)
    rows = list(await session.scalars(query.order_by(WebhookAttempt.id.desc()).limit(limit + 1)))
    return page(rows, limit, lambda a: (a.id,))
