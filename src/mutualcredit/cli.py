"""The `mutualcredit` command: serve, migrate, bootstrap networks and keys, back up, audit.

A person or a script runs it, so it never answers with a traceback: an error is one line on
stderr, `mutualcredit: <what went wrong>`, and the exit status says which kind of error it was
(EXIT_STATUSES below; `mutualcredit --help` lists them).

Each command that writes does so in one transaction that names the command as the actor of its
audit records (`cli:create-network`), as authentication names a key for a request.
"""

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import ValidationError

from mutualcredit.config import Settings
from mutualcredit.errors import ProblemError, database_unreachable
from mutualcredit.observability import configure_logging

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    from mutualcredit.networks.schemas import NetworkCreate

log = logging.getLogger("mutualcredit.cli")

T = TypeVar("T")

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_BUG = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # as a shell reports a process its closed pipe ended

EXIT_STATUSES = f"""\
exit status:
  {EXIT_OK}    done
  {EXIT_CHECK_FAILED}    a check found a problem (check, audit verify, the checks after restore)
  {EXIT_USAGE}    the command is wrong: a bad value, an unknown network, account or key, a
       write the ledger refuses, a port serve cannot listen on
  {EXIT_DATABASE}    the database: out of reach, not migrated, or the embedded PostgreSQL would
       not start
  {EXIT_BUG}    a bug (the traceback is logged with MUTUALCREDIT_LOG_LEVEL=debug)
  {EXIT_INTERRUPTED}  interrupted
  {EXIT_BROKEN_PIPE}  the output's reader went away (a closed pipe)
"""


class CommandError(Exception):
    """What the person at the command line gets told, in one line, with an exit status."""

    exit_status = EXIT_USAGE


class DatabaseError(CommandError):
    """The database is out of reach, not migrated, or the embedded server would not start."""

    exit_status = EXIT_DATABASE


# -- the database -------------------------------------------------------------------------------


def resolve_database(settings: Settings) -> tuple[str, bool]:
    """The URL to use, and whether it is the embedded server (started here if needed)."""
    if settings.database_url:
        return settings.database_url, False
    if settings.require_database_url:
        raise DatabaseError(
            "no database: MUTUALCREDIT_DATABASE_URL (or --database-url) is required here,"
            " where no embedded PostgreSQL is started"
        )
    from mutualcredit import embedded

    try:
        # The server keeps running while this process lives; it is stopped when the last
        # process that joined it exits.
        _, server_url = embedded.start(settings.data_dir, cleanup="stop")
    except subprocess.CalledProcessError as exc:
        program = Path(str(exc.cmd[0])).name
        raise DatabaseError(
            f"the embedded PostgreSQL in {settings.data_dir} would not start: {program} ended"
            f" with status {exc.returncode} (its log: {settings.data_dir / 'pgdata' / 'log'})"
        ) from exc
    except Exception as exc:
        raise DatabaseError(
            f"the embedded PostgreSQL in {settings.data_dir} would not start: {_first_line(exc)}"
        ) from exc
    url = _run(embedded.ensure_database(server_url, embedded.DATABASE))
    return url, True


def _where(url: str) -> str:
    """The database's place for a message: host, port and name, never a password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"'{parsed.database or ''}' at {host}{port}"


async def _schema_revision(url: str) -> str | None:
    """The revision the database's schema is at; None if it was never migrated."""
    import asyncpg

    from mutualcredit.db import plain_url

    try:
        conn = await asyncpg.connect(plain_url(url), timeout=10)
    except Exception as exc:
        raise DatabaseError(
            f"cannot connect to the database {_where(url)}: {_first_line(exc)}"
        ) from exc
    try:
        revision: str | None = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return revision


def require_schema(url: str) -> None:
    """Refuses to go on unless the database is reachable and migrated to this version's head."""
    from mutualcredit.migrate import head_revision

    revision = _run(_schema_revision(url))
    head = head_revision()
    if revision is None:
        raise DatabaseError(
            f"the database {_where(url)} is not migrated: run 'mutualcredit migrate' first"
        )
    if revision != head:
        raise DatabaseError(
            f"the database's schema is at revision {revision}, this version of mutualcredit"
            f" needs {head}: run 'mutualcredit migrate' (or use the version that migrated it)"
        )


@asynccontextmanager
async def _transaction(url: str, actor: str) -> AsyncIterator["AsyncSession"]:
    """One transaction on a short-lived engine, as a command needs, whose changes the audit log
    records as made by `actor` (the history and audit triggers read mutualcredit.actor)."""
    # Every table's model: the ORM resolves a model's foreign keys against the shared metadata
    # when it first runs, and a model whose foreign key names a table from a module nobody
    # imported (api_keys -> accounts) fails there. The service imports every router, so every
    # model; a command imports only what it uses.
    import mutualcredit.models  # noqa: F401
    from mutualcredit.audit.context import act_as
    from mutualcredit.db import create_engine, make_sessionmaker

    engine = create_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await act_as(session, actor)
            yield session
    finally:
        await engine.dispose()


def _actor(args: argparse.Namespace) -> str:
    return f"cli:{args.command}"


# -- serve and migrate --------------------------------------------------------------------------


async def _bootstrap_demo(url: str) -> str | None:
    """On the first start of an embedded database: a demo network and an operator key."""
    from sqlalchemy import func, select

    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks import service as networks
    from mutualcredit.networks.models import Network
    from mutualcredit.networks.schemas import NetworkCreate

    async with _transaction(url, "cli:serve") as session:
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
    _run(_schema_revision(url))  # reachable, or a clear message
    if not args.no_migrate:
        _run(migrate.upgrade(url))
    if embedded and not args.no_demo:
        require_schema(url)
        token = _run(_bootstrap_demo(url))
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
    _run(_schema_revision(url))  # reachable, or a clear message
    try:
        _run(migrate.upgrade(url, args.revision))
    except AlembicError as exc:
        raise CommandError(f"cannot migrate to {args.revision!r}: {_first_line(exc)}") from exc
    print(f"database at revision {_run(_schema_revision(url))} ({args.revision})")
    return EXIT_OK


# -- networks and keys --------------------------------------------------------------------------

# The options the fields of a request come from, to name them in a message.
_OPTION_OF_FIELD = {
    "code": "--code",
    "name": "--name",
    "unit_name": "--unit-name",
    "unit_symbol": "--unit-symbol",
    "scale": "--scale",
    "default_credit_limit": "--default-credit-limit",
    "default_balance_max": "--default-balance-max",
    "account": "--account",
    "label": "--label",
    "reason": "--reason",
}


def _network_create(args: argparse.Namespace) -> "NetworkCreate":
    """The request, checked by the API's own rules before the database is touched."""
    from mutualcredit.networks.schemas import NetworkCreate

    return NetworkCreate(
        code=args.code,
        name=args.name,
        unit_name=args.unit_name,
        unit_symbol=args.unit_symbol,
        scale=args.scale,
        default_credit_limit=args.default_credit_limit,
        default_balance_max=args.default_balance_max,
    )


async def _create_network(
    url: str, args: argparse.Namespace, data: "NetworkCreate"
) -> dict[str, Any]:
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role
    from mutualcredit.networks import service as networks

    async with _transaction(url, _actor(args)) as session:
        network = await networks.create_network(session, data)
        result: dict[str, Any] = {"network": network.code, "id": str(network.id)}
        if not args.no_key:
            key, token = await keys.create_key(
                session, role=Role.operator, network_id=network.id, label=args.label
            )
            result["key_id"] = key.key_id
            result["operator_key"] = token
        return result


def cmd_create_network(args: argparse.Namespace, settings: Settings) -> int:
    data = _network_create(args)
    url, _ = resolve_database(settings)
    require_schema(url)
    _print_json(_run(_create_network(url, args, data)))
    return EXIT_OK


async def _network_id(session: "AsyncSession", code: str) -> "uuid.UUID":
    from sqlalchemy import select

    from mutualcredit.networks.errors import NetworkNotFound
    from mutualcredit.networks.models import Network

    network_id: uuid.UUID | None = await session.scalar(
        select(Network.id).where(Network.code == code)
    )
    if network_id is None:
        raise NetworkNotFound(f"no network {code!r}")
    return network_id


def _check_key_options(args: argparse.Namespace) -> None:
    """Each role has its scope (api_keys_role_scope_check): say which option is missing or
    does not belong, rather than guess."""
    from mutualcredit.auth.schemas import KeyCreate

    role = args.role
    if role == "platform" and args.network:
        raise CommandError("a platform key belongs to no network: leave out --network")
    if role != "platform" and not args.network:
        raise CommandError("--network is required for operator, auditor and member keys")
    if role == "member" and not args.account:
        raise CommandError("--account is required for a member key")
    if role != "member" and args.account:
        raise CommandError(f"--account is only for a member key, not for a {role} key")
    # The API's own rules for an account code and a label. A platform key (which the API
    # cannot create) has no account, and its label follows the same rule.
    KeyCreate(
        role="operator" if role == "platform" else role, account=args.account, label=args.label
    )


async def _create_key(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from mutualcredit.accounts import service as accounts
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role

    role = Role(args.role)
    async with _transaction(url, _actor(args)) as session:
        network_id = account_id = None
        if args.network:
            network_id = await _network_id(session, args.network)
        if args.account:
            assert network_id is not None  # _check_key_options: an account comes with a network
            account_id = (await accounts.get_account(session, network_id, args.account)).id
        key, token = await keys.create_key(
            session, role=role, network_id=network_id, account_id=account_id, label=args.label
        )
        return {
            "key_id": key.key_id,
            "role": role.value,
            "network": args.network,
            "account": args.account,
            "token": token,
        }


def cmd_create_key(args: argparse.Namespace, settings: Settings) -> int:
    _check_key_options(args)
    url, _ = resolve_database(settings)
    require_schema(url)
    _print_json(_run(_create_key(url, args)))
    return EXIT_OK


async def _list_keys(url: str, network: str | None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mutualcredit.accounts.models import Account
    from mutualcredit.auth.models import ApiKey
    from mutualcredit.auth.schemas import Key
    from mutualcredit.networks.models import Network

    async with _transaction(url, "cli:list-keys") as session:
        query = (
            select(ApiKey, Network.code, Account.code)
            .outerjoin(Network, Network.id == ApiKey.network_id)
            .outerjoin(Account, Account.id == ApiKey.account_id)
            .order_by(ApiKey.created_at, ApiKey.key_id)
        )
        if network is not None:
            query = query.where(ApiKey.network_id == await _network_id(session, network))
        rows = (await session.execute(query)).all()
    return [
        Key(
            key_id=key.key_id,
            role=key.role,
            network=network_code,
            account=account_code,
            label=key.label,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        ).model_dump(mode="json")
        for key, network_code, account_code in rows
    ]


def cmd_list_keys(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    _print_json(_run(_list_keys(url, args.network)))
    return EXIT_OK


async def _revoke_key(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select

    from mutualcredit.audit.context import explain
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.errors import ApiKeyNotFound
    from mutualcredit.auth.models import ApiKey

    async with _transaction(url, _actor(args)) as session:
        network_id = (
            await session.execute(select(ApiKey.network_id).where(ApiKey.key_id == args.key_id))
        ).one_or_none()
        if network_id is None:
            raise ApiKeyNotFound(f"no key {args.key_id!r} (see 'mutualcredit list-keys')")
        await explain(session, args.reason)
        key = await keys.revoke_key(session, None, network_id[0], args.key_id)
        assert key.revoked_at is not None
        return {"key_id": key.key_id, "role": key.role, "revoked_at": key.revoked_at.isoformat()}


def cmd_revoke_key(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    _print_json(_run(_revoke_key(url, args)))
    return EXIT_OK


# -- backup and restore -------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit import backup

    url, _ = resolve_database(settings)
    revision = _run(_schema_revision(url))
    if revision is None:
        raise DatabaseError(f"nothing to back up: the database {_where(url)} is not migrated")
    target = Path(args.file)
    if target.is_dir():
        raise CommandError(f"{target} is a directory: name the backup file")
    try:
        backup.dump(url, target)
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror}") from exc
    print(f"backed up the database at revision {revision} to {target}")
    secret = settings.data_dir / "secret.key"
    if settings.secret_key is None and secret.exists():
        print(
            f"{secret} seals the networks' signing keys and is not in the backup:"
            " keep a copy of it apart from the backups"
        )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit import backup
    from mutualcredit.migrate import head_revision

    source = Path(args.file)
    if not source.is_file():
        raise CommandError(f"no backup file {source}")
    url, _ = resolve_database(settings)
    _run(_schema_revision(url))  # reachable, or a clear message
    if not _run(backup.is_empty(url)):
        raise CommandError(
            f"the database {_where(url)} is not empty: restore into a new data directory"
            " (--data-dir) or an empty database, never over a ledger"
        )
    try:
        backup.restore(url, source)
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from exc
    revision = _run(_schema_revision(url))
    print(f"restored {source} (schema revision {revision})")
    if revision != head_revision():
        # The checks are written for this version's schema: an older one is migrated first.
        print(
            "its schema is older than this version's: 'mutualcredit migrate' (or serve) brings"
            " it up to date; then 'mutualcredit check' and 'mutualcredit audit verify'"
        )
        return EXIT_OK
    checked = _run(_checks(url))
    return max(checked, _run(_audit_verify(url, None, seal=False)))


# -- checks, audit, openapi ---------------------------------------------------------------------


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit.openapi import render

    text = render()
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror}") from exc
    return EXIT_OK


async def _checks(url: str) -> int:
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
        return EXIT_OK
    for name, rows in report.failures.items():
        print(f"FAILED: {name}: {', '.join(rows)}")
    return EXIT_CHECK_FAILED


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    return _run(_checks(url))


async def _audit_verify(url: str, network: str | None, seal: bool) -> int:
    from sqlalchemy import select

    import mutualcredit.models  # noqa: F401 - every table's model (see _transaction)
    from mutualcredit import jobs
    from mutualcredit.audit import service as audit
    from mutualcredit.db import create_engine, make_sessionmaker
    from mutualcredit.networks.errors import NetworkNotFound
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
            if network is not None and not targets:
                raise NetworkNotFound(f"no network {network!r}")
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
        return EXIT_CHECK_FAILED if broken else EXIT_OK
    finally:
        await engine.dispose()


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    return _run(_audit_verify(url, args.network, seal=not args.no_seal))


# -- the command line ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error, with where to find the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=34)


def _global_options() -> _Parser:
    """Options every command takes, before or after its name. Their defaults are SUPPRESS so
    that a subcommand's parser, which parses last, never resets a value given before it."""
    options = _Parser(add_help=False)
    options.add_argument(
        "--database-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the URL of the PostgreSQL database to use (default: $MUTUALCREDIT_DATABASE_URL;"
        " unset: the embedded PostgreSQL in --data-dir)",
    )
    options.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=argparse.SUPPRESS,
        help="where the embedded PostgreSQL keeps its data, when no database URL is set"
        " (default: $MUTUALCREDIT_DATA_DIR, else ~/.local/share/mutualcredit)",
    )
    return options


def _whole_number(text: str) -> int:
    """Digits, with a minus sign perhaps, and nothing else: no spaces, underscores, plus signs
    or other scripts' digits, which int() would take."""
    if not re.fullmatch(r"-?[0-9]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _whole_number(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value

    return parse


def _port(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(
        prog="mutualcredit",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXIT_STATUSES,
        formatter_class=_formatter,
        parents=[common],
    )
    try:
        version = importlib.metadata.version("mutualcredit")
    except importlib.metadata.PackageNotFoundError:
        from mutualcredit import __version__ as version
    parser.add_argument(
        "--version", action="version", version=f"mutualcredit {version}", help="show the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            formatter_class=_formatter,
            parents=[common],
        )
        p.set_defaults(func=func)
        return p

    serve = command("serve", "apply the migrations, then serve HTTP", cmd_serve)
    serve.add_argument(
        "--host",
        help="the address to listen on (default: $MUTUALCREDIT_HOST, else 127.0.0.1)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        help="the port to listen on (default: $MUTUALCREDIT_PORT, else 8000)",
    )
    serve.add_argument(
        "--workers",
        type=_int_at_least(1),
        metavar="N",
        help="worker processes (default: $MUTUALCREDIT_WORKERS, else 1)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply the migrations first (default: apply them)",
    )
    serve.add_argument(
        "--no-demo",
        action="store_true",
        help="on the first start of an embedded database, do not create the network 'demo'"
        " and its operator key (default: create them)",
    )

    migrate = command("migrate", "apply the migrations (the schema)", cmd_migrate)
    migrate.add_argument(
        "--revision",
        default="head",
        help="the revision to upgrade to (default: %(default)s, the latest)",
    )

    net = command(
        "create-network", "create a network and print its operator key", cmd_create_network
    )
    net.add_argument(
        "--code",
        required=True,
        help="the network's code in URLs: lowercase letters, digits and inner hyphens, 1-32"
        " characters, fixed forever (required)",
    )
    net.add_argument("--name", required=True, help="the network's name (required)")
    net.add_argument(
        "--unit-name", required=True, help="the name of the unit, as 'hour' (required)"
    )
    net.add_argument("--unit-symbol", required=True, help="the unit's symbol, as 'h' (required)")
    net.add_argument(
        "--scale",
        type=_int_at_least(0),
        default=2,
        help="decimal places of the minor unit: with 2, amounts are hundredths; fixed forever"
        " (default: %(default)s)",
    )
    net.add_argument(
        "--default-credit-limit",
        type=_whole_number,
        default=0,
        metavar="MINOR_UNITS",
        help="the credit limit of accounts opened without one (default: %(default)s)",
    )
    net.add_argument(
        "--default-balance-max",
        type=_whole_number,
        default=None,
        metavar="MINOR_UNITS",
        help="the most accounts opened without a limit may hold (default: no upper limit)",
    )
    net.add_argument(
        "--label",
        default="created by CLI",
        help="the operator key's label (default: '%(default)s')",
    )
    net.add_argument(
        "--no-key",
        action="store_true",
        help="do not create an operator key (default: create one and print it, once)",
    )

    key = command("create-key", "create an API key and print its token, once", cmd_create_key)
    key.add_argument(
        "--role",
        required=True,
        choices=["platform", "operator", "auditor", "member"],
        help="what the key may do: platform (every network), operator (one network), auditor"
        " (read one network), member (one account) (required)",
    )
    key.add_argument(
        "--network",
        metavar="CODE",
        help="the key's network (default: none; required for operator, auditor and member keys)",
    )
    key.add_argument(
        "--account",
        metavar="CODE",
        help="the member's account (default: none; required for a member key)",
    )
    key.add_argument(
        "--label",
        default="created by CLI",
        help="a label to tell keys apart (default: '%(default)s')",
    )

    keys = command(
        "list-keys", "list API keys (their public ids, never their secrets)", cmd_list_keys
    )
    keys.add_argument(
        "--network",
        metavar="CODE",
        help="only this network's keys (default: every key, the platform keys too)",
    )

    revoke = command(
        "revoke-key", "revoke an API key: it fails from its next request on", cmd_revoke_key
    )
    revoke.add_argument(
        "key_id",
        metavar="KEY_ID",
        help="the key's public id, the part of the key between 'mc_' and the next '_'"
        " (see list-keys)",
    )
    revoke.add_argument(
        "--reason",
        help="why, kept in the audit log (default: none)",
    )

    backup = command(
        "backup", "write a backup of the database to a file (pg_dump's custom format)", cmd_backup
    )
    backup.add_argument(
        "file",
        metavar="FILE",
        help="where to write it; it replaces the file only once it is complete",
    )

    restore = command(
        "restore",
        "restore a backup into an empty database, then run the ledger and audit checks",
        cmd_restore,
    )
    restore.add_argument("file", metavar="FILE", help="a file written by 'mutualcredit backup'")

    command("check", "run the ledger's invariant checks", cmd_check)

    audit = command("audit", "the hash-chained audit log", cmd_audit)
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_sub.add_parser(
        "verify",
        help="seal pending records, then recompute every network's chain (exit 1 if broken)",
        description="Seal pending audit records, then recompute every network's hash chain;"
        " exit 1 and name the first broken record if one is.",
        formatter_class=_formatter,
        parents=[common],
    )
    verify.add_argument(
        "--network", metavar="CODE", help="only this network (default: every network)"
    )
    verify.add_argument(
        "--no-seal",
        action="store_true",
        help="do not seal pending records first (default: seal them)",
    )
    verify.set_defaults(func=cmd_audit)

    api = command("openapi", "write the OpenAPI document", cmd_openapi)
    api.add_argument(
        "--output",
        metavar="FILE",
        default="-",
        help="where to write it (default: %(default)s, the standard output)",
    )
    return parser


# -- running a command --------------------------------------------------------------------------

_OPTION_OF_SETTING = {
    "database_url": "--database-url",
    "data_dir": "--data-dir",
    "host": "--host",
    "port": "--port",
    "workers": "--workers",
}


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in _OPTION_OF_SETTING:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _first_line(exc: BaseException) -> str:
    """An exception's message in one line (drivers and libraries write several)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def _describe_invalid(exc: ValidationError, names: Mapping[str, str]) -> str:
    """A validation error in one line, naming the option each problem is in."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        problems.append(f"{names.get(field, field)}: {error['msg']}")
    return "; ".join(problems)


def _setting_names() -> dict[str, str]:
    """A setting by its environment variable, and by its option where it has one."""
    names = {name: f"MUTUALCREDIT_{name.upper()}" for name in Settings.model_fields}
    for name, option in _OPTION_OF_SETTING.items():
        names[name] = f"{option} or {names[name]}"
    return names


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _run(awaitable: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(awaitable)


def _fail(message: str, status: int) -> int:
    print(f"mutualcredit: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        return _fail(f"invalid setting: {_describe_invalid(exc, _setting_names())}", EXIT_USAGE)
    configure_logging(settings.log_level, settings.log_format)
    try:
        status: int = args.func(args, settings)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader of the output went away (`mutualcredit openapi | head`): nothing more to
        # say to it, and nothing for Python to flush into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except CommandError as exc:
        return _fail(str(exc), exc.exit_status)
    except ProblemError as exc:
        # A refusal or an unknown name: the same words the API would answer with.
        return _fail(exc.detail, EXIT_USAGE)
    except ValidationError as exc:
        return _fail(_describe_invalid(exc, _OPTION_OF_FIELD), EXIT_USAGE)
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if database_unreachable(exc):
            return _fail(f"lost the database: {_first_line(exc)}", EXIT_DATABASE)
        if isinstance(exc, DBAPIError):
            # A write the database's own rules refuse (a constraint, a trigger).
            return _fail(f"the database refused it: {_first_line(exc.orig or exc)}", EXIT_USAGE)
        log.debug("the command failed", exc_info=True)
        return _fail(
            f"internal error: {type(exc).__name__}: {_first_line(exc)}"
            " (MUTUALCREDIT_LOG_LEVEL=debug shows where)",
            EXIT_BUG,
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
