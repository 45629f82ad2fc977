"""Alembic environment: runs the migrations on an async engine.

The migration scripts themselves use only `op`, `sa` and alembic_utils' entities (with the text
each froze); this file imports the application's metadata and the ledger's SQL files
(migrations/sql/, through mutualcredit.ledger_sql) solely so that `alembic revision
--autogenerate` can compare them with a database.
"""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from mutualcredit import ledger_sql
from mutualcredit.models import metadata

config = context.config
target_metadata = metadata
ledger_sql.register()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) mode is not supported; run against a database")

# mutualcredit.migrate passes the (sync facade of an async) connection it already holds;
# the bare `alembic` command line gets a URL instead.
_connection = config.attributes.get("connection")
if _connection is None:
    asyncio.run(_run_with_new_engine())
else:
    _run(_connection)
