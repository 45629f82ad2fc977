"""The FastAPI application: create_app(settings) wires routers, handlers, lifespan and jobs."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from fastapi import FastAPI

from mutualcredit import __version__, egress, jobs
from mutualcredit.accounts.router import router as accounts_router
from mutualcredit.apidoc import describe, operation_id
from mutualcredit.apipages import add_pages
from mutualcredit.audit.router import router as audit_router
from mutualcredit.auth.gate import AuthenticateBeforeBody
from mutualcredit.auth.router import router as keys_router
from mutualcredit.config import Settings
from mutualcredit.db import DatabaseTimeouts, create_engine, create_write_pool, make_sessionmaker
from mutualcredit.errors import install_handlers
from mutualcredit.events.router import router as events_router
from mutualcredit.events.webhooks import webhooks as event_webhooks
from mutualcredit.exports.router import router as exports_router
from mutualcredit.federation import peers as federation_peers
from mutualcredit.federation import worker as federation_worker
from mutualcredit.federation.context import Federation
from mutualcredit.federation.peer_router import router as federation_peer_router
from mutualcredit.federation.router import router as federation_router
from mutualcredit.federation.statements_router import router as federation_statements_router
from mutualcredit.federation.trades import CrossNetworkTrades
from mutualcredit.fees.router import router as fees_router
from mutualcredit.health.router import router as health_router
from mutualcredit.limits.router import router as limits_router
from mutualcredit.middleware import BodyLimitMiddleware, RequestIdMiddleware
from mutualcredit.networks.router import router as networks_router
from mutualcredit.observability import (
    ObservabilityMiddleware,
    configure_logging,
    metrics_response,
)
from mutualcredit.probes import router as probes_router
from mutualcredit.ratelimit import RateLimiter
from mutualcredit.requests.router import router as requests_router
from mutualcredit.trades.booker import Booker
from mutualcredit.trades.lane import TradeLane
from mutualcredit.trades.router import router as trades_router
from mutualcredit.webhooks import delivery as webhook_delivery
from mutualcredit.webhooks.context import Webhooks
from mutualcredit.webhooks.router import router as webhooks_router
from mutualcredit.webhooks.sender import Sender

log = logging.getLogger("mutualcredit")

DESCRIPTION = """
A mutual credit ledger: networks of members who pay each other in a shared unit that nobody
issues up front. Every trade debits the payer and credits the payee by the same amount, so a
network's balances always sum to zero; credit limits and upper limits bound every account.

Amounts are integers in the network's minor unit (see the network's `scale`). Authenticate with
`Authorization: Bearer <key>` (the Authorize button on /docs). Every write can be retried
safely with the same `Idempotency-Key` (required on `POST .../trades`). Errors are RFC 9457
problem details (`application/problem+json`) with a stable `code`: branch on it. Each
operation lists the statuses it answers and, under each, its codes.
"""


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The write path's pool hands connections back as they are.

    asyncpg's default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release: a second round trip per statement, about a sixth of the CPU per trade in
    the service and in PostgreSQL alike (bench/README.md). Nothing on this pool leaves session
    state behind: it runs single autocommit statements, whose advisory locks are
    transaction-scoped, with no cursors, LISTEN or SET. asyncpg still rolls back a transaction
    left open before calling this."""


def create_app(settings: Settings, *, trade_lane: bool = True) -> FastAPI:
    """The application. `trade_lane=False` leaves every trade request to the framework's
    routing, as the tests do to show that the lane answers exactly as the route would."""
    if settings.database_url is None:
        raise ValueError("create_app needs a database URL; the CLI starts the embedded server")
    database_url = settings.database_url
    timeouts = DatabaseTimeouts.of(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url, pool_size=settings.pool_size, timeouts=timeouts)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # The trade write path (authentication and bookings): single statements, each its own
        # transaction, on a plain asyncpg pool (trades/booker.py says why).
        app.state.fast_pool = await create_write_pool(
            database_url, size=settings.pool_size, timeouts=timeouts, reset=_keep_session
        )
        app.state.booker = Booker(
            app.state.fast_pool,
            flushers=settings.trade_batch_flushers,
            batch_size=settings.trade_batch_size,
            acquire_timeout=timeouts.pool,
        )
        app.state.booker.start()
        # Everything loaded so far lives as long as the process: keep it out of the garbage
        # collector's full passes, whose pauses show in the latency tail.
        gc.freeze()
        sweeper = asyncio.create_task(
            jobs.run_forever(app.state.sessionmaker, settings.sweep_interval_seconds)
        )
        http = egress.client(
            timeout=settings.federation_timeout_seconds,
            allow_private=settings.outbound_allow_private,
        )
        app.state.federation = Federation(
            sessionmaker=app.state.sessionmaker,
            settings=settings,
            http=http,
        )
        # The ledger's trades hand cross-network payees and transfers to federation through the
        # interface they declare (trades/cross_network.py): federation sits above the ledger.
        app.state.cross_network = CrossNetworkTrades(app.state.federation)
        # The outbox: every worker delivers due transfers (claimed with SKIP LOCKED).
        outbox = asyncio.create_task(federation_worker.run_forever(app.state.federation))
        # Webhooks: delivered by a process of its own (webhooks/process.py, which `serve`
        # starts), or, when so set, by a few loops in every worker (claimed with SKIP LOCKED).
        # Either way the application manages endpoints with the same context.
        hooks_sender = Sender(
            allow_private=settings.outbound_allow_private,
            max_body=settings.webhook_max_response_bytes,
        )
        app.state.webhooks = Webhooks(
            sessionmaker=app.state.sessionmaker, settings=settings, sender=hooks_sender
        )
        loops = settings.webhook_senders if settings.webhook_delivery == "workers" else 0
        senders = [
            asyncio.create_task(webhook_delivery.run_forever(app.state.webhooks))
            for _ in range(loops)
        ]
        # The sealer: records become events when sealed, so it runs more often than the other
        # jobs, and wakes the deliveries (this process's, and by NOTIFY another's) when it has
        # sealed something.
        sealer = asyncio.create_task(
            jobs.seal_forever(
                app.state.sessionmaker,
                settings.seal_interval_seconds,
                sealed=app.state.webhooks.due.set,
            )
        )
        try:
            yield
        finally:
            for task in (sealer, *senders, outbox, sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hooks_sender.aclose()
            await http.aclose()
            await app.state.booker.stop()
            await app.state.fast_pool.close()
            await engine.dispose()

    app = FastAPI(
        title="mutualcredit",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # /docs and /redoc are served by apipages, with no asset from another host.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pool_timeout = timeouts.pool
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.pending_ttl = timedelta(seconds=settings.pending_ttl_seconds)
    app.state.request_ttl = timedelta(seconds=settings.request_ttl_seconds)
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # No body is read for a caller who is not known (the trade lane does the same itself).
    app.add_middleware(AuthenticateBeforeBody, check_peer=federation_peers.check_headers)
    app.add_middleware(ObservabilityMiddleware)
    # The request id is known to everything inside, the access log included.
    app.add_middleware(RequestIdMiddleware)
    if trade_lane:
        # Outermost: it answers well-formed trade requests itself, doing the work of the
        # middlewares inside it, and hands everything else on to them.
        app.add_middleware(TradeLane, max_bytes=settings.max_body_bytes)
    app.add_route("/metrics", metrics_response, include_in_schema=False)
    # The trade routes first: routes are matched in order, and they carry the load.
    for router in (
        trades_router,
        probes_router,
        keys_router,
        networks_router,
        accounts_router,
        limits_router,
        fees_router,
        requests_router,
        audit_router,
        health_router,
        exports_router,
        events_router,
        federation_router,
        federation_statements_router,
        federation_peer_router,
        webhooks_router,
    ):
        app.include_router(router)
    app.webhooks.include_router(event_webhooks)
    describe(app)
    add_pages(app)
    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn workers call (`--factory`): settings come from the environment."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
