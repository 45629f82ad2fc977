"""The `mutualcredit` command: serve, migrate, bootstrap networks and keys, export, audit."""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.config import Settings
from mutualcredit.errors import ProblemError
from mutualcredit.observability import configure_logging

log = logging.getLogger("mutualcredit")


@asynccontextmanager
async def _transaction(url: str) -> AsyncIterator[AsyncSession]:
    """One transaction on a short-lived engine, as a CLI command needs."""
    from mutualcredit.db import create_engine, make_sessionmaker

    engine = create_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        await engine.dispose()


def resolve_database(settings: Settings) -> tuple[str, bool]:
    """The URL to use, and whether it is the embedded server (started here if needed)."""
    if settings.database_url:
        return settings.database_url, False
    if settings.require_database_url:
        raise SystemExit("MUTUALCREDIT_DATABASE_URL is required here (no embedded PostgreSQL)")
    from mutualcredit import embedded

    # The server keeps running while this process lives; it is stopped when the last process
    # that joined it exits.
    _, server_url = embedded.start(settings.data_dir, cleanup="stop")
    url = asyncio.run(embedded.ensure_database(server_url, embedded.DATABASE))
    return url, True


async def _bootstrap_demo(url: str) -> str | None:
    """On the first start of an embedded database: a demo network and an operator key."""
    from sqlalchemy import func, select

    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks import service as networks
    from mutualcredit.networks.models import Network
    from mutualcredit.networks.schemas import NetworkCreate

    async with _transaction(url) as session:
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
    from mutualcredit import migrate, server

    url, embedded = resolve_database(settings)
    if not args.no_migrate:
        asyncio.run(migrate.upgrade(url))
    if embedded and not args.no_demo:
        token = asyncio.run(_bootstrap_demo(url))
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
    server.run(settings)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit import migrate

    url, _ = resolve_database(settings)
    asyncio.run(migrate.upgrade(url, args.revision))
    print(f"database at revision {args.revision}")
    return 0


async def _create_network(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks import service as networks
    from mutualcredit.networks.schemas import NetworkCreate

    data = NetworkCreate(
        code=args.code,
        name=args.name,
        unit_name=args.unit_name,
        unit_symbol=args.unit_symbol,
        scale=args.scale,
        default_credit_limit=args.default_credit_limit,
        default_balance_max=args.default_balance_max,
    )
    async with _transaction(url) as session:
        network = await networks.create_network(session, data)
        result: dict[str, Any] = {"network": network.code, "id": str(network.id)}
        if not args.no_key:
            _, token = await keys.create_key(
                session, role=Role.operator, network_id=network.id, label="created by CLI"
            )
            result["operator_key"] = token
        return result


def cmd_create_network(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    print(json.dumps(asyncio.run(_create_network(url, args)), indent=2))
    return 0


async def _create_key(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select

    from mutualcredit.accounts import service as accounts
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks.models import Network

    role = Role(args.role)
    async with _transaction(url) as session:
        network_id = account_id = None
        if role is not Role.platform:
            if not args.network:
                raise SystemExit("--network is required for operator and member keys")
            network = await session.scalar(select(Network).where(Network.code == args.network))
            if network is None:
                raise SystemExit(f"no network {args.network!r}")
            network_id = network.id
        if role is Role.member:
            if not args.account:
                raise SystemExit("--account is required for a member key")
            assert network_id is not None
            account_id = (await accounts.get_account(session, network_id, args.account)).id
        key, token = await keys.create_key(
            session, role=role, network_id=network_id, account_id=account_id, label=args.label
        )
        return {"key_id": key.key_id, "role": role.value, "token": token}


def cmd_create_key(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    print(json.dumps(asyncio.run(_create_key(url, args)), indent=2))
    return 0


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit.openapi import render

    text = render()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


async def _audit(url: str) -> int:
    from mutualcredit.db import create_engine
    from mutualcredit.ledger_checks import run_checks

    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            report = await run_checks(conn)
    finally:
        await engine.dispose()
    if report.ok:
        print("all ledger checks passed")
        return 0
    for name, rows in report.failures.items():
        print(f"FAILED: {name}: {', '.join(rows)}")
    return 1


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    return asyncio.run(_audit(url))


async def _audit_verify(url: str, network: str | None, seal: bool) -> int:
    from sqlalchemy import select

    from mutualcredit import jobs
    from mutualcredit.audit import service as audit
    from mutualcredit.db import create_engine, make_sessionmaker
    from mutualcredit.networks.models import Network

    engine = create_engine(url, pool_size=1)
    sessionmaker = make_sessionmaker(engine)
    try:
        if seal:
            await jobs.seal_audit(sessionmaker)
        broken = 0
        async with sessionmaker() as session:
            query = select(Network).order_by(Network.code)
            if network is not None:
                query = query.where(Network.code == network)
            targets = list(await session.scalars(query))
            if not targets:
                raise SystemExit(f"no network {network!r}")
            for net in targets:
                result = await audit.verify(session, net.id, net.code)
                if result.ok:
                    print(
                        f"{net.code}: ok, {result.sealed} records, head {result.head_hash}"
                        f" ({result.unsealed} not yet sealed)"
                    )
                else:
                    assert result.first_broken is not None
                    broken += 1
                    print(
                        f"{net.code}: BROKEN at record {result.first_broken.seq}:"
                        f" {result.first_broken.problem}"
                    )
        return 1 if broken else 0
    finally:
        await engine.dispose()


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    return asyncio.run(_audit_verify(url, args.network, seal=not args.no_seal))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mutualcredit", description=__doc__)
    parser.add_argument("--database-url", help="overrides MUTUALCREDIT_DATABASE_URL")
    parser.add_argument("--data-dir", type=Path, help="embedded PostgreSQL data directory")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations and run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations")
    serve.add_argument("--no-demo", action="store_true", help="no demo network on first start")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply the migrations")
    mig.add_argument("--revision", default="head")
    mig.set_defaults(func=cmd_migrate)

    net = sub.add_parser("create-network", help="create a network and an operator key")
    net.add_argument("--code", required=True)
    net.add_argument("--name", required=True)
    net.add_argument("--unit-name", required=True)
    net.add_argument("--unit-symbol", required=True)
    net.add_argument("--scale", type=int, default=2)
    net.add_argument("--default-credit-limit", type=int, default=0)
    net.add_argument("--default-balance-max", type=int, default=None)
    net.add_argument("--no-key", action="store_true", help="do not create an operator key")
    net.set_defaults(func=cmd_create_network)

    key = sub.add_parser("create-key", help="create an API key and print its token once")
    key.add_argument("--role", choices=["platform", "operator", "member"], required=True)
    key.add_argument("--network")
    key.add_argument("--account")
    key.add_argument("--label", default="created by CLI")
    key.set_defaults(func=cmd_create_key)

    api = sub.add_parser("openapi", help="write the OpenAPI document")
    api.add_argument("--output", default="-")
    api.set_defaults(func=cmd_openapi)

    check = sub.add_parser("check", help="run the ledger's invariant checks")
    check.set_defaults(func=cmd_check)

    audit = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="seal pending records, then recompute every network's chain (exit 1 if broken)",
    )
    verify.add_argument("--network", help="only this network")
    verify.add_argument("--no-seal", action="store_true", help="do not seal pending records first")
    verify.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    for name in ("host", "port", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    settings = Settings(**overrides)
    # Commands other than serve print for a person; serve logs JSON for machines.
    configure_logging(
        settings.log_level, settings.log_format if args.command == "serve" else "text"
    )
    try:
        code: int = args.func(args, settings)
    except (ProblemError, ValidationError) as exc:
        # A refusal or bad input is the operator's to fix: say what, without a traceback.
        message = exc.detail if isinstance(exc, ProblemError) else str(exc)
        print(f"mutualcredit: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
