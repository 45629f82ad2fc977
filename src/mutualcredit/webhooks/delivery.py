"""Delivering events to webhook endpoints: the loops that run off the write path, in the
delivery process (process.py) or, when so set, in every worker.

Each endpoint has a cursor over its network's event source (events.service.read, in seq order:
commit order per network). A worker claims an endpoint that is due and has something after its
cursor (its cursor is behind the network's sealed head) with FOR UPDATE SKIP LOCKED, reads the
next events it subscribes to (up to BATCH, in one read) and leases the endpoint (its
`next_attempt_at` pushed past the time the batch may take) in the same short transaction. It
then POSTs the events one after another, in seq order, on the kept-alive connection, and stops
at the first that fails; in a second transaction it records every attempt and moves the cursor
past those delivered. So:

- order: per endpoint, events go in seq order, one in flight at a time; a manual redelivery is
  sent beside that order;
- at most one worker sends an endpoint's events at a time, across processes and replicas: the
  lease lasts as long as a batch can (no call starts after the delivery timeout has passed since
  the claim, and each call ends within it, so twice the timeout, plus LEASE_MARGIN_SECONDS to
  record). A worker that dies mid-batch leaves a lease that runs out, and the events it had not
  recorded are sent again with the same `webhook-id` (at least once: a receiver drops a
  `webhook-id` it has seen);
- a failed attempt (no answer, a timeout, anything but 2xx, a redirect, which is never followed)
  is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (RETRY_SCHEDULE, scaled by
  MUTUALCREDIT_WEBHOOK_RETRY_SCALE): eight attempts over about 27 hours. After the last the
  event is logged `failed` and the endpoint moves on (an operator can redeliver it); the
  events after a failure wait for it, and go as a batch again once it is through;
- every attempt has its row in the delivery log (webhook_attempts), written with the cursor's
  move in one transaction;
- an endpoint that has not had a 2xx for MUTUALCREDIT_WEBHOOK_DISABLE_AFTER_DAYS (5) is disabled,
  with its reason; the audit log records it as `webhook_endpoint.disabled`.

Latency: the audit sealer (jobs.seal_forever, every MUTUALCREDIT_SEAL_INTERVAL_SECONDS) wakes the
delivery loops as soon as it has sealed something (`Webhooks.due`: set by the sealer of the
same process, or by a notification from another's, process.py), so an event goes out moments
after its commit; the loops also look every MUTUALCREDIT_WEBHOOK_INTERVAL_SECONDS, for retries
that fall due and for anything a wake-up missed. An endpoint whose cursor is at the head is not
claimed at all: nothing is read for it until the head moves.

Calls go through sender.py (egress's address policy: no loopback or private targets unless
allowed, checked at connect time after DNS; no redirects; kept-alive connections), with an
overall timeout, and read at most MUTUALCREDIT_WEBHOOK_MAX_RESPONSE_BYTES of the answer.
"""

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from cryptography.exceptions import InvalidTag
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.context import act_as, explain
from mutualcredit.audit.models import AuditHead
from mutualcredit.events import service as events
from mutualcredit.events.schemas import Event
from mutualcredit.webhooks import signing
from mutualcredit.webhooks.context import Webhooks
from mutualcredit.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookRedelivery
from mutualcredit.webhooks.sender import ConnectFailed, ProtocolError, Target
from mutualcredit.webhooks.service import head_seq

log = logging.getLogger("mutualcredit.webhooks")

# Seconds to wait after each failed attempt: the first attempt and seven retries.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Who the audit log names for what deliveries change (an endpoint disabled for failure).
ACTOR = "service:webhooks"
# How soon an endpoint whose secret does not unseal is looked at again.
UNSEALABLE_RETRY_SECONDS = 60.0
# A lease outlives the batch's calls by this much: the time to record their outcomes.
LEASE_MARGIN_SECONDS = 30.0
# Most events one claim reads and sends: one read, one lease and one transaction to record
# them, where one event a claim costs two transactions and a read each (measured:
# bench/README.md).
BATCH = 100


@dataclass
class Job:
    """Deliveries claimed: the events, in seq order, where to, signed by which secrets.
    `attempt` is the first event's attempt (it may be a retry); every later one's is its
    first. A redelivery has one event."""

    endpoint_id: uuid.UUID
    redelivery_id: int | None
    url: str
    cursor: int
    attempt: int
    events: list[Event]
    secrets: list[str]
    claimed: float = field(default_factory=time.monotonic)

    @functools.cached_property
    def target(self) -> Target:
        """The URL, parsed once for the whole batch."""
        return Target.of(self.url)


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


def _unsealed(endpoint: WebhookEndpoint, hooks: Webhooks, now: datetime) -> list[str] | None:
    """The secrets in force, or None when they were sealed under another deployment key:
    nothing can be signed, and the caller looks again later (UNSEALABLE_RETRY_SECONDS), so
    that the endpoint does not hold up the others meanwhile."""
    try:
        return _secrets(endpoint, hooks.secret_key, now)
    except InvalidTag:
        log.error("webhook %s: its secret does not unseal (MUTUALCREDIT_SECRET_KEY?)", endpoint.id)
        return None


async def _next_events(
    session: AsyncSession, endpoint: WebhookEndpoint, after: int, limit: int
) -> list[Event]:
    """The endpoint's next events after `after`, as its owner may see them (a member's
    endpoint: in the member's view)."""
    return await events.read(
        session,
        endpoint.network_id,
        after=after,
        types=endpoint.event_types,
        account=endpoint.account,
        limit=limit,
        viewer=endpoint.member_account,
    )


def _lease(hooks: Webhooks, now: datetime) -> datetime:
    """Until when a claim holds its endpoint: calls start for up to one timeout after the
    claim (`send_all`), and each takes at most one more."""
    timeout = hooks.settings.webhook_timeout_seconds
    return now + timedelta(seconds=2 * timeout + LEASE_MARGIN_SECONDS)


async def _claim_endpoint(hooks: Webhooks) -> Job | bool | None:
    """The next events of a due endpoint, leased; True for an endpoint with nothing to send
    (looked at again once its network's head moves); None when no endpoint is due."""
    async with hooks.sessionmaker.begin() as session:
        now = datetime.now(UTC)
        # Only an endpoint behind its network's sealed head can have something to send: an
        # idle one costs nothing until something is sealed.
        sealed_head = (
            select(AuditHead.seq)
            .where(AuditHead.network_id == WebhookEndpoint.network_id)
            .scalar_subquery()
        )
        endpoint = await session.scalar(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.status == "enabled",
                WebhookEndpoint.next_attempt_at <= now,
                WebhookEndpoint.cursor < sealed_head,
            )
            .order_by(WebhookEndpoint.next_attempt_at)
            .limit(1)
            .with_for_update(of=WebhookEndpoint, skip_locked=True)
        )
        if endpoint is None:
            return None
        # The sealed seqs are a prefix of the chain (events.service), so when nothing up to the
        # head read first is for this endpoint, its cursor can skip to the head: an idle
        # endpoint is not read from far behind again at every look.
        head = await head_seq(session, endpoint.network_id)
        found = await _next_events(session, endpoint, endpoint.cursor, BATCH)
        if not found:
            endpoint.cursor = max(endpoint.cursor, head)
            return True
        secrets = _unsealed(endpoint, hooks, now)
        if secrets is None:
            endpoint.next_attempt_at = now + timedelta(seconds=UNSEALABLE_RETRY_SECONDS)
            return True
        endpoint.next_attempt_at = _lease(hooks, now)
        return Job(
            endpoint_id=endpoint.id,
            redelivery_id=None,
            url=endpoint.url,
            cursor=endpoint.cursor,
            attempt=endpoint.attempt + 1,
            events=found,
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
        found = await _next_events(session, endpoint, redelivery.seq - 1, 1)
        event = found[0] if found else None
        if event is None or event.seq != redelivery.seq:
            redelivery.done_at = now  # checked when asked for; gone only if its type was dropped
            return True
        secrets = _unsealed(endpoint, hooks, now)
        if secrets is None:
            redelivery.next_attempt_at = now + timedelta(seconds=UNSEALABLE_RETRY_SECONDS)
            return True
        redelivery.next_attempt_at = _lease(hooks, now)
        return Job(
            endpoint_id=endpoint.id,
            redelivery_id=redelivery.id,
            url=endpoint.url,
            cursor=endpoint.cursor,
            attempt=redelivery.attempt + 1,
            events=[event],
            secrets=secrets,
        )


async def send_all(hooks: Webhooks, job: Job) -> list[Answer]:
    """POSTs the job's events in order, one at a time, and stops at the first that fails, or
    once the delivery timeout has passed since the claim (what the lease allows for): the
    answers, one per event sent."""
    answers: list[Answer] = []
    for event in job.events:
        if answers and time.monotonic() - job.claimed >= hooks.settings.webhook_timeout_seconds:
            break
        answer = await send(hooks, job, event)
        answers.append(answer)
        if not answer.ok:
            break
    return answers


async def send(hooks: Webhooks, job: Job, event: Event) -> Answer:
    """POSTs the event, signed; never raises for what the receiver or the network does."""
    body = event.model_dump_json()
    headers = signing.headers(event.id, datetime.now(UTC), body, job.secrets)
    headers["content-type"] = "application/json"
    headers["user-agent"] = "mutualcredit-webhooks"
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(hooks.settings.webhook_timeout_seconds):
            status = await hooks.sender.post(job.target, headers, body.encode())
        if 300 <= status < 400:
            error = "redirect not followed"
    except TimeoutError:
        error = "timed out"
    except ConnectFailed as exc:
        error = "address not allowed" if exc.refused else "connection failed"
    except (ProtocolError, OSError, asyncio.IncompleteReadError, httpx.InvalidURL) as exc:
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


async def record(hooks: Webhooks, job: Job, answers: list[Answer]) -> list[str]:
    """Logs every attempt and moves the endpoint (or the redelivery) on, in one transaction;
    returns the outcomes, one per answer (the first events of the job)."""
    sent = list(zip(job.events, answers, strict=False))
    attempts = [job.attempt if i == 0 else 1 for i in range(len(sent))]
    retries = [
        None if answer.ok else _retry_in(hooks, attempt)
        for (_, answer), attempt in zip(sent, attempts, strict=True)
    ]
    outcomes = [
        "delivered" if answer.ok else ("retrying" if retry_in is not None else "failed")
        for (_, answer), retry_in in zip(sent, retries, strict=True)
    ]
    async with hooks.sessionmaker.begin() as session:
        now = datetime.now(UTC)
        endpoint = await session.get_one(WebhookEndpoint, job.endpoint_id, with_for_update=True)
        if job.redelivery_id is not None:
            redelivery = await session.get_one(WebhookRedelivery, job.redelivery_id)
            redelivery.attempt = job.attempt
            if retries[0] is None:
                redelivery.done_at = now
            else:
                redelivery.next_attempt_at = now + retries[0]
        elif endpoint.cursor == job.cursor:
            # (Otherwise the lease ran out and another worker has moved the cursor on.)
            for (event, answer), attempt, retry_in in zip(sent, attempts, retries, strict=True):
                _advance(hooks, endpoint, event.seq, attempt, answer, retry_in, now)
            if endpoint.status == "disabled":
                # On record as the delivery's doing, with its reason (set before the UPDATE
                # that the audit trigger sees is flushed).
                with session.no_autoflush:
                    await act_as(session, ACTOR)
                    await explain(session, endpoint.status_reason)
        await session.execute(
            insert(WebhookAttempt),
            [
                {
                    "endpoint_id": job.endpoint_id,
                    "event_id": event.id,
                    "seq": event.seq,
                    "event_type": event.type,
                    "attempt": attempt,
                    "redelivery": job.redelivery_id is not None,
                    "outcome": outcome,
                    "status_code": answer.status_code,
                    "latency_ms": answer.latency_ms,
                    "error": answer.error,
                    "attempted_at": now,
                }
                for (event, answer), attempt, outcome in zip(sent, attempts, outcomes, strict=True)
            ],
        )
    for (event, answer), attempt in zip(sent, attempts, strict=True):
        if not answer.ok:
            log.info(
                "webhook %s: event %s attempt %d: %s",
                job.endpoint_id,
                event.id,
                attempt,
                answer.error,
            )
    return outcomes


def _advance(
    hooks: Webhooks,
    endpoint: WebhookEndpoint,
    seq: int,
    attempt: int,
    answer: Answer,
    retry_in: timedelta | None,
    now: datetime,
) -> None:
    """Moves the endpoint past one answered event: to the next (delivered, or its retries
    spent), or to its next retry."""
    if answer.ok:
        endpoint.failing_since = None
    elif endpoint.failing_since is None:
        endpoint.failing_since = now
    if retry_in is None:
        endpoint.cursor = seq
        endpoint.attempt = 0
        endpoint.next_attempt_at = now
    else:
        endpoint.attempt = attempt
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
                await record(hooks, job, await send_all(hooks, job))
    return done


async def run_forever(hooks: Webhooks) -> None:
    """The delivery loop: several run in each process that delivers
    (MUTUALCREDIT_WEBHOOK_SENDERS), so that a slow receiver holds up only one of them. Between
    rounds it waits to be told that something was sealed (`hooks.due`), or the interval,
    whichever comes first."""
    while True:
        try:
            await deliver_due(hooks)
        except Exception:
            log.exception("webhook delivery failed; trying again at the next interval")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hooks.settings.webhook_interval_seconds):
                await hooks.due.wait()
        hooks.due.clear()
