"""An embedded PostgreSQL (the `pgserver` package) for a machine that has only Python.

Used when no database URL is configured. The server listens on a unix socket only, inside the
data directory, so it never collides with a PostgreSQL already running on the machine.
"""

import json
import logging
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg

log = logging.getLogger("mutualcredit.embedded")

DATABASE = "mutualcredit"


def start(data_dir: Path, *, cleanup: str | None = "stop") -> tuple[Any, str]:
    """Starts (or joins) the server for `data_dir`; returns the handle and the server's URL.

    `cleanup="stop"` stops the server when this process exits; `"delete"` also removes the data
    (for throwaway test servers); `None` leaves it running.
    """
    pgserver = _pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / "pgdata")
    server = pgserver.get_server(data_dir / "pgdata", cleanup_mode=cleanup)
    return server, str(server.get_uri())


def _pgserver() -> ModuleType:
    """The pgserver package, imported here: it is heavy and only the embedded mode needs it.

    On import, pgserver asks platformdirs for the user's runtime directory (for its lock file).
    Where XDG_RUNTIME_DIR is unset (servers, containers, ssh sessions without a login manager),
    platformdirs warns, then falls back to a private directory of its own that serves as well;
    the warning would open the output of every command. Only that warning is silenced, and only
    for this import: a runtime directory that is set but unsafe still warns, as do all others.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="XDG_RUNTIME_DIR is not set", category=UserWarning
        )
        import pgserver
    return pgserver


def client_binary(name: str) -> Path:
    """A client program that ships with the embedded server (pg_dump, pg_restore, psql): the
    same version as the server it talks to."""
    return Path(str(_pgserver().__file__)).parent / "pginstall" / "bin" / name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process that joined it exits, counting them in
    a file; a process killed by a signal never leaves it, and the server would then never stop.
    Forget the processes that no longer exist before joining."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = [int(p) for p in json.loads(handles.read_text())]
    except (ValueError, TypeError):
        pids = []
    alive = [p for p in pids if _pid_alive(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def database_url(server_url: str, database: str) -> str:
    """The server URL with another database name (pgserver hands out .../postgres?host=...)."""
    head, _, query = server_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


async def ensure_database(server_url: str, database: str) -> str:
    """Creates `database` on the server if it does not exist; returns its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifiers cannot be bound as parameters; the name is ours, quoted to be safe.
            await conn.execute(f'CREATE DATABASE "{database}"')
            log.info("created database %s", database)
    finally:
        await conn.close()
    return database_url(server_url, database)
