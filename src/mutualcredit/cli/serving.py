"""Commands that run the service and shape its database: serve (with the demo network of a
first start on an embedded database) and migrate."""

import argparse
import os
import signal
import sys
import tempfile

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
    # Workers are separate processes: they learn the database from the environment.
    os.environ["MUTUALCREDIT_DATABASE_URL"] = url
    # uvicorn re-raises SIGTERM once it has drained its requests. With the default handler that
    # kills the process before atexit runs, leaving the embedded PostgreSQL behind; exiting
    # normally instead lets pgserver stop it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker keeps its own counters; /metrics adds up the files in this directory.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mutualcredit-metrics-")
    try:
        _run_server(settings)
    except SystemExit as exc:
        # The server exits by itself when it cannot start (a port in use: uvicorn's status 3,
        # after logging why); say so in the one line every error gets.
        if exc.code not in (None, 0):
            raise CommandError(
                f"the HTTP server on {settings.host}:{settings.port} stopped"
                f" (status {exc.code}): the log above says why"
            ) from None
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
