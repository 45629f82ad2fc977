"""Delivering events to webhook endpoints: the loop every worker runs, off the write path.

Each endpoint has a cursor over its network's event source (events.service.read, in seq order:
commit order per network). A worker claims a due endpoint with FOR UPDATE SKIP LOCKED, reads the
one event after its cursor that the endpoint subscribes to, and leases the endpoint (its
`next_attempt_at` pushed past the call's timeout) in the same short transaction; it then POSTs
the event, and in a second transaction records the attempt and moves the cursor. So:

- order: per endpoint, events go in seq order, one in flight at a time; a manual redelivery is
  sent beside that order;
- at most one worker sends an event at a time, across processes and replicas; a worker that dies
  mid-delivery leaves a lease that runs out, and the same event is sent again with the same
  `webhook-id` (at least once: a receiver drops a `webhook-id` it has seen);
- a failed attempt (no answer, a timeout, anything but 2xx, a redirect, which is never followed)
  is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (RETRY_SCHEDULE, scaled by
  MUTUALCREDIT_WEBHOOK_RETRY_SCALE): eight attempts over about 27 hours. After the last the
  event is logged `failed` and the endpoint moves on (an operator can redeliver it);
- an endpoint that has not had a 2xx for MUTUALCREDIT_WEBHOOK_DISABLE_AFTER_DAYS (5) is disabled,
  with its reason; the audit log records it as `webhook_endpoint.disabled`.

Calls go through the egress client (no loopback or private targets unless allowed, checked at
connect time after DNS; no redirects), with an overall timeout, and read at most
MUTUALCREDIT_WEBHOOK_MAX_RESPONSE_BYTES of the answer.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.context import act_as, explain
from mutualcredit.egress import AddressNotAllowed
from mutualcredit.events import service as events
from mutualcredit.events.schemas import Event
from mutualcredit.webhooks import signing
from mutualcredit.webhooks.context import Webhooks
from mutualcredit.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookRedelivery
from mutualcredit.webhooks.service import head_seq

log = logging.getLogger("mutualcredit.webhooks")

# Seconds to wait after each failed attempt: the first attempt and seven retries.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Who the audit log names for what deliveries change (an endpoint disabled for failure).
ACTOR = "service:webhooks"
# How soon an endpoint whose secret does not unseal is looked at again.
UNSEALABLE_RETRY_SECONDS = 60.0
# A lease outlives the call by this much: the time to record its outcome.
LEASE_MARGIN_SECONDS = 30.0


@dataclass
class Job:
    """One delivery attempt, claimed: the event, where to, signed by which secrets."""

    endpoint_id: uuid.UUID
    redelivery_id: int | None
    url: str
    cursor: int
    attempt: int
    event: Event
    secrets: list[str]


@dataclass
class Answer:
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        """Answered 2xx, in time (an answer whose body outlasts the timeout is retried)."""
        return self.error is None and self.status_code is not None and self.status_code < 300


def _secrets(endpoint: WebhookEndpoint, key: bytes, now: datetime) -> list[str]:
    """The secrets in force: the current one, and the previous one during its grace."""
    found = [signing.unseal(endpoint.secret_sealed, endpoint.id, endpoint.secret_version, key)]
    if (
        endpoint.previous_sealed is not None
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(
            signing.unseal(endpoint.previous_sealed, endpoint.id, -endpoint.secret_version, key)
        )
    return found


async def _next_event(session: AsyncSession, endpoint: WebhookEndpoint, after: int) -> Event | None:
    found = await events.read(
        session,
        endpoint.network_id,
        after=after,
        types=endpoint.event_types,
        account=endpoint.account,
        limit=1,
        viewer=endpoint.member_account,
    )
    return found[0] if found else None


def _lease(hooks: Webhooks, now: datetime) -> datetime:
    return now + timedelta(seconds=hooks.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)


async def _claim_endpoint(hooks: Webhooks) -> Job | bool | None:
    """The next event of a due endpoint, leased; True for an endpoint with nothing to send
    (looked at again after the loop's interval); None when no endpoint is due."""
    async with hooks.sessionmaker.begin() as session:
        now = datetime.now(UTC)
        endpoint = await session.scalar(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.status == "enabled", WebhookEndpoint.next_attempt_at <= now)
            .order_by(WebhookEndpoint.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if endpoint is None:
            return None
        # The sealed seqs are a prefix of the chain (events.service), so when nothing up to the
        # head read first is for this endpoint, its cursor can skip to the head: an idle
        # endpoint is not read from far behind again at every look.
        head = await head_seq(session, endpoint.network_id)
        event = await _next_event(session, endpoint, endpoint.cursor)
        if event is None:
            endpoint.cursor = max(endpoint.cursor, head)
            endpoint.next_attempt_at = now + timedelta(
                seconds=hooks.settings.webhook_interval_seconds
            )
            return True
        try:
            secrets = _secrets(endpoint, hooks.secret_key, now)
        except InvalidTag:
            # Sealed under another deployment key: nothing can be signed. Looked at again
            # later, so that it does not hold up the other endpoints meanwhile.
            log.error(
                "webhook %s: its secret does not unseal (MUTUALCREDIT_SECRET_KEY?)", endpoint.id
            )
            endpoint.next_attempt_at = now + timedelta(seconds=UNSEALABLE_RETRY_SECONDS)
            return True
        endpoint.next_attempt_at = _lease(hooks, now)
        return Job(
            endpoint_id=endpoint.id,
            redelivery_id=None,
            url=endpoint.url,
            cursor=endpoint.cursor,
            attempt=endpoint.attempt + 1,
            event=event,
            secrets=secrets,
        )


async def _claim_redelivery(hooks: Webhooks) -> Job | bool | None:
    async with hooks.sessionmaker.begin() as session:
        now = datetime.now(UTC)
        row = (
            await session.execute(
                select(WebhookRedelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookRedelivery.endpoint_id)
                .where(
                    WebhookRedelivery.done_at.is_(None),
                    WebhookRedelivery.next_attempt_at <= now,
                    WebhookEndpoint.status == "enabled",
                )
                .order_by(WebhookRedelivery.next_attempt_at)
                .limit(1)
                .with_for_update(of=WebhookRedelivery, skip_locked=True)
            )
        ).first()
        if row is None:
            return None
        redelivery, endpoint = row.tuple()
        event = await _next_event(session, endpoint, redelivery.seq - 1)
        if event is None or event.seq != redelivery.seq:
            redelivery.done_at = now  # checked when asked for; gone only if its type was dropped
            return True
        try:
            secrets = _secrets(endpoint, hooks.secret_key, now)
        except InvalidTag:
            log.error(
                "webhook %s: its secret does not unseal (MUTUALCREDIT_SECRET_KEY?)", endpoint.id
            )
            redelivery.next_attempt_at = now + timedelta(seconds=UNSEALABLE_RETRY_SECONDS)
            return True
        redelivery.next_attempt_at = _lease(hooks, now)
        return Job(
            endpoint_id=endpoint.id,
            redelivery_id=redelivery.id,
            url=endpoint.url,
            cursor=endpoint.cursor,
            attempt=redelivery.attempt + 1,
            event=event,
            secrets=secrets,
        )


async def send(hooks: Webhooks, job: Job) -> Answer:
    """POSTs the event, signed; never raises for what the receiver or the network does."""
    body = job.event.model_dump_json()
    headers = signing.headers(job.event.id, datetime.now(UTC), body, job.secrets)
    headers["content-type"] = "application/json"
    headers["user-agent"] = "mutualcredit-webhooks"
    cap = hooks.settings.webhook_max_response_bytes
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(hooks.settings.webhook_timeout_seconds):
            async with hooks.http.stream("POST", job.url, content=body, headers=headers) as answer:
                status = answer.status_code
                read = 0
                async for chunk in answer.aiter_raw():
                    read += len(chunk)
                    if read >= cap:
                        break  # the rest is not read: closing drops the connection
        if status is not None and 300 <= status < 400:
            error = "redirect not followed"
    except TimeoutError:
        error = "timed out"
    except httpx.ConnectError as exc:
        refused = isinstance(exc.__cause__, AddressNotAllowed) or "not one this service" in str(exc)
        error = "address not allowed" if refused else "connection failed"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    latency = int((time.monotonic() - started) * 1000)
    if status is not None and error is None and not 200 <= status < 300:
        error = f"answered {status}"
    return Answer(status_code=status, latency_ms=latency, error=error)


def _retry_in(hooks: Webhooks, attempt: int) -> timedelta | None:
    """When to try again after failed attempt number `attempt`; None once the schedule is
    spent."""
    if attempt > len(RETRY_SCHEDULE):
        return None
    return timedelta(seconds=RETRY_SCHEDULE[attempt - 1] * hooks.settings.webhook_retry_scale)


async def record(hooks: Webhooks, job: Job, answer: Answer) -> str:
    """Logs the attempt and moves the endpoint (or the redelivery) on; returns the outcome."""
    retry_in = None if answer.ok else _retry_in(hooks, job.attempt)
    outcome = "delivered" if answer.ok else ("retrying" if retry_in is not None else "failed")
    async with hooks.sessionmaker.begin() as session:
        now = datetime.now(UTC)
        endpoint = await session.get_one(WebhookEndpoint, job.endpoint_id, with_for_update=True)
        if job.redelivery_id is not None:
            redelivery = await session.get_one(WebhookRedelivery, job.redelivery_id)
            redelivery.attempt = job.attempt
            if retry_in is None:
                redelivery.done_at = now
            else:
                redelivery.next_attempt_at = now + retry_in
        elif endpoint.cursor == job.cursor:
            # (Otherwise the lease ran out and another worker has moved the cursor on.)
            _advance(hooks, endpoint, job, answer, retry_in, now)
            if endpoint.status == "disabled":
                # On record as the delivery's doing, with its reason (set before the UPDATE
                # that the audit trigger sees is flushed).
                with session.no_autoflush:
                    await act_as(session, ACTOR)
                    await explain(session, endpoint.status_reason)
        session.add(
            WebhookAttempt(
                endpoint_id=job.endpoint_id,
                event_id=job.event.id,
                seq=job.event.seq,
                event_type=job.event.type,
                attempt=job.attempt,
                redelivery=job.redelivery_id is not None,
                outcome=outcome,
                status_code=answer.status_code,
                latency_ms=answer.latency_ms,
                error=answer.error,
                attempted_at=now,
            )
        )
    if not answer.ok:
        log.info(
            "webhook %s: event %s attempt %d: %s",
            job.endpoint_id,
            job.event.id,
            job.attempt,
            answer.error,
        )
    return outcome


def _advance(
    hooks: Webhooks,
    endpoint: WebhookEndpoint,
    job: Job,
    answer: Answer,
    retry_in: timedelta | None,
    now: datetime,
) -> None:
    if answer.ok:
        endpoint.failing_since = None
    elif endpoint.failing_since is None:
        endpoint.failing_since = now
    if retry_in is None:
        endpoint.cursor = job.event.seq
        endpoint.attempt = 0
        endpoint.next_attempt_at = now
    else:
        endpoint.attempt = job.attempt
        endpoint.next_attempt_at = now + retry_in
    limit = timedelta(days=hooks.settings.webhook_disable_after_days)
    if endpoint.failing_since is not None and now - endpoint.failing_since >= limit:
        endpoint.status = "disabled"
        endpoint.status_reason = (
            f"no successful delivery since {endpoint.failing_since.isoformat()}"
        )


async def deliver_due(hooks: Webhooks) -> int:
    """Sends whatever is due, one job at a time; returns how many jobs it handled."""
    done = 0
    for claim in (_claim_redelivery, _claim_endpoint):
        while True:
            job = await claim(hooks)
            if job is None:
                break
            done += 1
            if isinstance(job, Job):
                await record(hooks, job, await send(hooks, job))
    return done


async def run_forever(hooks: Webhooks) -> None:
    """The delivery loop: several run in every worker process (MUTUALCREDIT_WEBHOOK_SENDERS),
    so that a slow receiver holds up only one of them."""
    while True:
        try:
            await deliver_due(hooks)
        except Exception:
            log.exception("webhook delivery failed; trying again at the next interval")
        await asyncio.sleep(hooks.settings.webhook_interval_seconds)
