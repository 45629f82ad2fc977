"""The delivery process: `mutualcredit deliver`, which `mutualcredit serve` runs beside its HTTP
workers (MUTUALCREDIT_WEBHOOK_DELIVERY=process, the default).

Why a process of its own: a worker that both answers requests and delivers serves both from one
event loop on one core, and a delivered event costs about a third of what a trade does, so the
trades a worker can book fall by as much as it delivers, and deliveries queue behind requests
under load (bench/README.md). In a process of its own, delivery takes a second core where
there is one, and neither waits for the other.

It runs MUTUALCREDIT_WEBHOOK_SENDERS delivery loops (delivery.run_forever) and seals nothing: the
workers' sealers NOTIFY `jobs.SEALED_CHANNEL` in the transaction that seals, and this process
LISTENs to it on a connection of its own, waking its loops at each notification. The loops also
look every MUTUALCREDIT_WEBHOOK_INTERVAL_SECONDS: for retries that fall due, and for what was
sealed while the listening connection was down (it reconnects, and checks it is alive every
LISTEN_CHECK_SECONDS, so a connection silently gone is noticed).
"""

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

import asyncpg

from mutualcredit.config import Settings
from mutualcredit.db import DatabaseTimeouts, create_engine, make_sessionmaker, plain_url
from mutualcredit.jobs import SEALED_CHANNEL
from mutualcredit.webhooks import delivery
from mutualcredit.webhooks.context import Webhooks
from mutualcredit.webhooks.sender import Sender

log = logging.getLogger("mutualcredit.webhooks")

# How often the listening connection is checked, and how long to wait before reconnecting it.
LISTEN_CHECK_SECONDS = 10.0
RECONNECT_SECONDS = 1.0
# How often a process started by another checks that its parent is still there.
PARENT_CHECK_SECONDS = 1.0


async def listen(url: str, timeouts: DatabaseTimeouts, due: asyncio.Event) -> None:
    """Sets `due` at every notification on SEALED_CHANNEL, and once each time it starts
    listening (for what was sealed before); reconnects whenever its connection is lost."""
    while True:
        try:
            conn = await asyncpg.connect(plain_url(url), **timeouts.connect_args())
        except Exception as exc:  # the database down, refusing, a bad URL: it is logged
            log.warning("cannot listen for sealed events (%s); trying again", exc)
            await asyncio.sleep(RECONNECT_SECONDS)
            continue
        try:
            await conn.add_listener(SEALED_CHANNEL, lambda *_: due.set())
            due.set()
            while True:
                await asyncio.sleep(LISTEN_CHECK_SECONDS)
                async with asyncio.timeout(timeouts.statement):
                    await conn.fetchval("SELECT 1")
        except Exception as exc:  # whatever befell the connection: make another
            log.warning("lost the connection that listens for sealed events (%s)", exc)
        finally:
            conn.terminate()
        await asyncio.sleep(RECONNECT_SECONDS)


async def _parent_gone(parent: int) -> None:
    """Returns once the process that started this one has gone (its children are given to
    another process). Where the kernel can say so at once (Linux), it is also asked to."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    while os.getppid() == parent:  # noqa: ASYNC110 - no event to wait for: the kernel's word
        await asyncio.sleep(PARENT_CHECK_SECONDS)


def lower_priority(priority: str) -> None:
    """Where the machine is short of CPU, trades go first and deliveries take what is left:
    they catch up once the load eases (bench/README.md). `idle`: Linux's SCHED_IDLE, which
    runs when nothing else of the machine's wants the CPU and never preempts what does (nice
    19 where there is no such policy); `low`: nice 10; `normal`: as the HTTP workers."""
    if priority == "idle":
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            os.nice(19)
    elif priority == "low":
        os.nice(10)


async def run(settings: Settings, url: str, parent: int | None = None) -> None:
    """Delivers from the database at `url` until SIGTERM or SIGINT, or until `parent` has
    gone."""
    timeouts = DatabaseTimeouts.of(settings)
    engine = create_engine(url, pool_size=settings.webhook_senders + 1, timeouts=timeouts)
    sender = Sender(
        allow_private=settings.outbound_allow_private,
        max_body=settings.webhook_max_response_bytes,
    )
    hooks = Webhooks(sessionmaker=make_sessionmaker(engine), settings=settings, sender=sender)
    tasks = [
        asyncio.create_task(listen(url, timeouts, hooks.due)),
        *(
            asyncio.create_task(delivery.run_forever(hooks))
            for _ in range(settings.webhook_senders)
        ),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watches: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if parent is not None:
        watches.append(asyncio.create_task(_parent_gone(parent)))
    try:
        await asyncio.wait(watches, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            log.warning("the process that started this one (%d) has gone; stopping", parent)
    finally:
        for task in (*tasks, *watches):
            task.cancel()
        for task in (*tasks, *watches):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sender.aclose()
        await engine.dispose()


def main(settings: Settings, url: str, parent: int | None = None) -> None:
    """The process's entry point (the CLI's `deliver`)."""
    lower_priority(settings.webhook_priority)
    log.info("delivering webhooks (pid %d, %d loops)", os.getpid(), settings.webhook_senders)
    asyncio.run(run(settings, url, parent))
