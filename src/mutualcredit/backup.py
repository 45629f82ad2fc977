"""Backups of the ledger's database, with pg_dump and pg_restore.

The programs are those that ship with pgserver, the embedded server's own version (they also
read older servers). A backup is pg_dump's custom format: consistent (one snapshot, taken while
the service runs), readable by its owner only, and named as its target only once complete. A
restore goes into an empty database only, in one transaction, so that it never mixes with a
ledger and a failure leaves the database as empty as it was.

The connection is given to the programs in libpq's environment variables, never in their
arguments, where a password would be visible to every user of the machine (ps).
"""

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from mutualcredit import embedded
from mutualcredit.db import plain_url


class BackupError(Exception):
    """pg_dump or pg_restore failed; the message is the first line it gave."""


def libpq_environment(url: str) -> dict[str, str]:
    """This process's environment, with the database of `url` in libpq's variables."""
    parsed = make_url(url)
    env = dict(os.environ)

    def one(value: str | Sequence[str] | None) -> str | None:
        return value if value is None or isinstance(value, str) else value[-1]

    settings = {
        "PGHOST": parsed.host or one(parsed.query.get("host")),
        "PGPORT": str(parsed.port) if parsed.port else one(parsed.query.get("port")),
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password if isinstance(parsed.password, str) else None,
        "PGDATABASE": parsed.database,
        # libpq's name, or asyncpg's for the same modes.
        "PGSSLMODE": one(parsed.query.get("sslmode")) or one(parsed.query.get("ssl")),
    }
    env.update({name: value for name, value in settings.items() if value})
    return env


def _run(program: str, arguments: list[str], url: str) -> None:
    result = subprocess.run(  # noqa: S603 - a program of pgserver's, arguments of our own
        [str(embedded.client_binary(program)), "--no-password", *arguments],
        env=libpq_environment(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {result.returncode}"
        raise BackupError(f"{program} failed: {reason.removeprefix(f'{program}: ')}")


def dump(url: str, target: Path) -> None:
    """Writes a backup of the database to `target` (OSError if it cannot be written there)."""
    # Beside the target, then renamed: a backup that fails half-way never passes for one, nor
    # replaces the last good one. Only its owner may read it: it holds every account and the
    # hashes of the API keys.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _run("pg_dump", ["--format=custom", f"--file={partial}"], url)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


async def is_empty(url: str) -> bool:
    """True when the database holds no table, view or sequence of anyone's."""
    conn = await asyncpg.connect(plain_url(url), timeout=10)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_toast%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        )
    finally:
        await conn.close()
    return int(count) == 0


def restore(url: str, source: Path) -> None:
    """Restores a backup into the database, which the caller found empty."""
    # Objects are owned by whoever restores, as on any server a backup is taken to.
    _run(
        "pg_restore",
        [
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            f"--dbname={make_url(url).database or ''}",
            str(source),
        ],
        url,
    )
