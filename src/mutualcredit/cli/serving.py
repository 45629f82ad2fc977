"""Commands that run the service and shape its database: serve (with the demo network of a
first start on an embedded database, and the webhook delivery process beside it), deliver and
migrate."""

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from mutualcredit.cli.common import (
    EXIT_OK,
    CommandError,
    first_line,
    require_schema,
    resolve_database,
    run,
    schema_revision,
    transaction,
)
from mutualcredit.config import Settings

log = logging.getLogger("mutualcredit.serve")

# After the delivery process exits unasked, how long before it is started again: RESTART_SECONDS,
# doubled after each exit within STEADY_SECONDS of its start (it cannot start: the database is
# down, say), up to RESTART_MAX_SECONDS. And how long it has to stop when asked, before it is
# killed.
RESTART_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STEADY_SECONDS = 60.0
STOP_SECONDS = 15.0


async def _bootstrap_demo(url: str) -> str | None:
    """On the first start of an embedded database: a demo network and an operator key."""
    from sqlalchemy import func, select

    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks import service as networks
    from mutualcredit.networks.models import Network
    from mutualcredit.networks.schemas import NetworkCreate

    async with transaction(url, "cli:serve") as session:
        if await session.scalar(select(func.count()).select_from(Network)):
            return None
        network = await networks.create_network(
            session,
            NetworkCreate(
                code="demo",
                name="Demo network",
                unit_name="hour",
                unit_symbol="h",
                scale=2,
                default_credit_limit=10_000,
                default_balance_max=None,
            ),
        )
        _, token = await keys.create_key(
            session, role=Role.operator, network_id=network.id, label="demo operator"
        )
        return token


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit import migrate

    url, embedded = resolve_database(settings)
    run(schema_revision(url))  # reachable, or a clear message
    if not args.no_migrate:
        run(migrate.upgrade(url))
    if embedded and not args.no_demo:
        require_schema(url)
        token = run(_bootstrap_demo(url))
        if token:
            base = f"http://{settings.host}:{settings.port}"
            print(
                "\nFirst start: created network 'demo' (unit: hour, scale 2) and its operator "
                "key.\nIt is shown once and never stored; keep it now:\n\n"
                f"    {token}\n\n"
                "Try:\n"
                f"    curl -H 'Authorization: Bearer {token}' {base}/v1/networks/demo\n",
                flush=True,
            )
    # Workers, and the delivery process, are separate processes: they learn the database (and
    # where the deployment's secret key is kept) from the environment.
    os.environ["MUTUALCREDIT_DATABASE_URL"] = url
    os.environ["MUTUALCREDIT_DATA_DIR"] = str(settings.data_dir)
    # uvicorn re-raises SIGTERM once it has drained its requests. With the default handler that
    # kills the process before atexit runs, leaving the embedded PostgreSQL behind; exiting
    # normally instead lets pgserver stop it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker keeps its own counters; /metrics adds up the files in this directory.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mutualcredit-metrics-")
    deliverer = DeliveryProcess() if settings.webhook_delivery == "process" else None
    try:
        if deliverer is not None:
            deliverer.start()
        _run_server(settings)
    except SystemExit as exc:
        # The server exits by itself when it cannot start (a port in use: uvicorn's status 3,
        # after logging why); say so in the one line every error gets.
        if exc.code not in (None, 0):
            raise CommandError(
                f"the HTTP server on {settings.host}:{settings.port} stopped"
                f" (status {exc.code}): the log above says why"
            ) from None
    finally:
        if deliverer is not None:
            deliverer.stop()
    return EXIT_OK


class DeliveryProcess:
    """`mutualcredit deliver` beside the HTTP server (webhooks/process.py says why): started with
    it, started again after it exits unasked (RESTART_SECONDS, longer if it keeps exiting), and
    stopped when the server stops (SIGTERM, then SIGKILL after STOP_SECONDS). When this process
    is killed outright, the kernel tells the child (it asks for PR_SET_PDEATHSIG, which is bound
    to the thread that started it: this class's own, which lives as long as the process), and
    the child also notices that its parent has changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._keep_running, name="deliverer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping:
                return None
            self._proc = subprocess.Popen(  # noqa: S603 - our own command
                [sys.executable, "-m", "mutualcredit.cli", "deliver", "--parent", str(os.getpid())]
            )
            return self._proc

    def _keep_running(self) -> None:
        pause = RESTART_SECONDS
        while True:
            started = time.monotonic()
            proc = self._spawn()
            if proc is None:
                return
            status = proc.wait()
            with self._lock:
                if self._stopping:
                    return
            if time.monotonic() - started >= STEADY_SECONDS:
                pause = RESTART_SECONDS
            log.warning(
                "the webhook delivery process exited (status %s); starting it again in %.0f s",
                status,
                pause,
            )
            time.sleep(pause)
            pause = min(2 * pause, RESTART_MAX_SECONDS)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cmd_deliver(args: argparse.Namespace, settings: Settings) -> int:
    """Delivers webhooks until SIGTERM: what `serve` runs beside its workers, and what runs on
    its own where they are set not to (MUTUALCREDIT_WEBHOOK_DELIVERY=off)."""
    from mutualcredit.webhooks import process

    url, _ = resolve_database(settings)
    require_schema(url)
    process.main(settings, url, parent=args.parent)
    return EXIT_OK


def _run_server(settings: Settings) -> None:
    """The HTTP server itself (server.py: uvicorn with the limits of a server that faces the
    internet), until it is told to stop."""
    from mutualcredit import server

    server.run(settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError as AlembicError

    from mutualcredit import migrate

    url, _ = resolve_database(settings)
    run(schema_revision(url))  # reachable, or a clear message
    try:
        run(migrate.upgrade(url, args.revision))
    except AlembicError as exc:
        raise CommandError(f"cannot migrate to {args.revision!r}: {first_line(exc)}") from exc
    print(f"database at revision {run(schema_revision(url))} ({args.revision})")
    return EXIT_OK
