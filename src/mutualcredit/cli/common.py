"""What every command of the `mutualcredit` command line shares: its exit statuses, its errors
(one line, never a traceback), the database it works on, and the one transaction of a command
that writes, which names the command as the actor of its audit records."""

import argparse
import asyncio
import json
import signal
import subprocess
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mutualcredit.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

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


def first_line(exc: BaseException) -> str:
    """An exception's message in one line (drivers and libraries write several)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].strip()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def run(awaitable: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(awaitable)


# The options the fields of a request come from, to name them in a message.
OPTION_OF_FIELD = {
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
            f"the embedded PostgreSQL in {settings.data_dir} would not start: {first_line(exc)}"
        ) from exc
    url = run(embedded.ensure_database(server_url, embedded.DATABASE))
    return url, True


def where(url: str) -> str:
    """The database's place for a message: host, port and name, never a password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"'{parsed.database or ''}' at {host}{port}"


async def schema_revision(url: str) -> str | None:
    """The revision the database's schema is at; None if it was never migrated."""
    import asyncpg

    from mutualcredit.db import plain_url

    try:
        conn = await asyncpg.connect(plain_url(url), timeout=10)
    except Exception as exc:
        raise DatabaseError(
            f"cannot connect to the database {where(url)}: {first_line(exc)}"
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

    revision = run(schema_revision(url))
    head = head_revision()
    if revision is None:
        raise DatabaseError(
            f"the database {where(url)} is not migrated: run 'mutualcredit migrate' first"
        )
    if revision != head:
        raise DatabaseError(
            f"the database's schema is at revision {revision}, this version of mutualcredit"
            f" needs {head}: run 'mutualcredit migrate' (or use the version that migrated it)"
        )


@asynccontextmanager
async def transaction(url: str, actor: str) -> AsyncIterator["AsyncSession"]:
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


def actor(args: argparse.Namespace) -> str:
    return f"cli:{args.command}"
