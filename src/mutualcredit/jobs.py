"""Background jobs every worker runs: each is one SQL function call in its own transaction,
repeated while it finds a full batch. They coordinate through PostgreSQL (row locks, SKIP LOCKED),
so any number of workers and replicas can run them at once.

- expire overdue holds          mc_expire_overdue     (access-time checks already refuse them)
- end temporary limits          mc_revert_due_limits
- expire open payment requests  mc_expire_requests
- charge periodic fees          mc_charge_fees        (membership and demurrage, per boundary)

and, in a loop of its own with a shorter interval (seal_forever), because a change becomes an
event (the feed, webhooks) only once it is sealed:

- seal the audit log            mc_audit_seal         (chains new records per network)
"""

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mutualcredit.observability import JOB_ITEMS, PENDING, UNSEALED

log = logging.getLogger("mutualcredit.jobs")

# Small statements, spaced out: each is a burst of database CPU that requests queue behind, so
# many short ones keep the latency tail flat where a few long ones would not (measured:
# bench/README.md).
BATCH = 100
PAUSE = 0.005

_GAUGES = """
    SELECT (SELECT count(*) FROM trades WHERE status = 'pending'),
           (SELECT count(*) FROM audit_log WHERE hash IS NULL)
"""

JOBS: dict[str, str] = {
    "expired holds": "SELECT mc_expire_overdue(:batch)",
    "ended temporary limits": "SELECT mc_revert_due_limits(:batch)",
    "expired payment requests": "SELECT mc_expire_requests(:batch)",
    "periodic fees charged": "SELECT mc_charge_fees(:batch)",
}
SEAL = "SELECT mc_audit_seal(:batch)"
SEALED = "sealed audit records"
# Told, in the transaction that seals, whenever records were sealed: processes that deliver
# webhooks but seal nothing themselves (`mutualcredit deliver`) LISTEN to it.
SEALED_CHANNEL = "mutualcredit_sealed"
_NOTIFY = f"SELECT pg_notify('{SEALED_CHANNEL}', '')"


async def run_once(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Runs every job until it finds less than a full batch; returns what each did."""
    done: dict[str, int] = {}
    for name, sql in JOBS.items():
        total = 0
        while True:
            async with sessionmaker.begin() as session:
                count = int((await session.execute(text(sql), {"batch": BATCH})).scalar_one())
            total += count
            if count < BATCH:
                break
            await asyncio.sleep(PAUSE)
        if total:
            log.info("%s: %d", name, total)
            JOB_ITEMS.labels(name).inc(total)
        done[name] = total
    async with sessionmaker() as session:
        pending, unsealed = (await session.execute(text(_GAUGES))).one()
    PENDING.set(pending)
    UNSEALED.set(unsealed)
    return done


async def seal_audit(
    sessionmaker: async_sessionmaker[AsyncSession], sealed: Callable[[], None] | None = None
) -> int:
    """Seals every pending audit record now (the CLI's verify does this first); calls
    `sealed` after each batch that sealed something, so that readers need not wait for the
    rest, and notifies SEALED_CHANNEL in its transaction (delivered at commit, to other
    processes)."""
    total = 0
    while True:
        async with sessionmaker.begin() as session:
            count = int((await session.execute(text(SEAL), {"batch": BATCH})).scalar_one())
            if count:
                await session.execute(text(_NOTIFY))
        total += count
        if count and sealed is not None:
            sealed()
        if count < BATCH:
            break
        await asyncio.sleep(PAUSE)
    if total:
        JOB_ITEMS.labels(SEALED).inc(total)
    return total


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession], interval: float) -> None:
    while True:
        try:
            await run_once(sessionmaker)
        except Exception:
            log.exception("a background job failed; trying again at the next interval")
        await asyncio.sleep(interval)


async def seal_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    interval: float,
    sealed: Callable[[], None],
) -> None:
    """The sealer's own loop: an event's delay from commit is at most about one `interval`
    plus its delivery. With nothing to seal a round is one short query on the index of the
    unsealed records (audit_log_unsealed_network_id_id_idx), so a short interval costs little.
    `sealed` is called whenever records were sealed (it wakes the process's deliveries)."""
    while True:
        try:
            await seal_audit(sessionmaker, sealed)
        except Exception:
            log.exception("sealing the audit log failed; trying again at the next interval")
        await asyncio.sleep(interval)
