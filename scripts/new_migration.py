"""Writes the next migration: what the models and migrations/sql/ hold that the migrations do not.

    python scripts/new_migration.py "what changed and why"

Starts a throwaway embedded PostgreSQL, applies the migrations up to head, and runs Alembic's
autogenerate against it: tables, columns, indexes and constraints from the models, and every
function, trigger and view whose file is new, changed or gone (alembic_utils: create_entity,
replace_entity or drop_entity with the text frozen in the migration, and the text it replaces
frozen in the downgrade). Then formats the file with ruff. Read it and edit it before committing
(migrations/sql/README.md says what to look for).
"""

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import Script
from sqlalchemy import Connection

from mutualcredit import embedded, migrate
from mutualcredit.db import create_engine


async def autogenerate(url: str, message: str) -> Path:
    await migrate.upgrade(url)
    engine = create_engine(url, pool_size=1)
    written: list[Path] = []
    try:
        async with engine.begin() as conn:

            def revision(sync_conn: Connection) -> None:
                config = migrate.alembic_config(url)
                config.attributes["connection"] = sync_conn
                # Revisions are numbered in order (0001, 0002, ...), not alembic's random ids.
                head = migrate.head_revision()
                rev_id = f"{int(head or 0) + 1:04d}"
                script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
                assert isinstance(script, Script)
                written.append(Path(script.path))

            await conn.run_sync(revision)
    finally:
        await engine.dispose()
    return written[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("message", help="the migration's first line: what changed and why")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mc-new-migration-"))
    try:
        server, server_url = embedded.start(home, cleanup="delete")
        try:
            url = asyncio.run(embedded.ensure_database(server_url, "autogenerate"))
            path = asyncio.run(autogenerate(url, args.message))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    # The developer's own tools, on the file just written: the template's `sa` goes when only
    # entities changed, then the formatting.
    subprocess.run(["ruff", "check", "--fix", "--select", "F401", str(path)], check=True)  # noqa: S603, S607
    subprocess.run(["ruff", "format", str(path)], check=True)  # noqa: S603, S607
    print(path)


if __name__ == "__main__":
    main()
