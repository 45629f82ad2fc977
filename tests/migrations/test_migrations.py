"""The migrations are the schema: they go up, down and up again, and match the models."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import DOMAIN

from mutualcredit import migrate
from mutualcredit.db import create_engine
from mutualcredit.models import metadata
from tests.conftest import create_database, drop_database


@pytest.fixture
async def scratch_url(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url, prefix="mc_migrations")
    yield url
    await drop_database(server_url, url)


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    await migrate.upgrade(scratch_url)
    ledger = {"networks", "accounts", "trades", "entries", "trade_rejections", "api_keys"}
    assert ledger <= await _tables(scratch_url)
    await migrate.downgrade(scratch_url, "base")
    assert await _tables(scratch_url) == {"alembic_version"}
    conn = await asyncpg.connect(scratch_url)
    try:
        leftovers = await conn.fetch(
            "SELECT proname FROM pg_proc WHERE proname LIKE 'mc\\_%'"
            " UNION ALL SELECT viewname FROM pg_views WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    assert leftovers == []
    await migrate.upgrade(scratch_url)
    assert ledger <= await _tables(scratch_url)


async def test_autogenerate_finds_no_difference_from_the_models(scratch_url: str) -> None:
    await migrate.upgrade(scratch_url)
    engine = create_engine(scratch_url, pool_size=1)

    def diff(sync_conn: Connection) -> list[object]:
        # include_schemas: alembic_utils' comparator (the ledger's SQL: test_ledger_sql.py)
        # reads it; env.py's configure sets it.
        context = MigrationContext.configure(
            sync_conn, opts={"compare_server_default": True, "include_schemas": False}
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == []


async def test_constraint_names_match_the_models(scratch_url: str) -> None:
    """Autogenerate does not compare CHECK constraints; their names are what error messages
    and the error mapping carry, so compare them here."""
    await migrate.upgrade(scratch_url)
    conn = await asyncpg.connect(scratch_url)
    try:
        rows = await conn.fetch(
            "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = 'public' AND c.contype IN ('c', 'u', 'f', 'p')"
            " AND c.conrelid::regclass::text <> 'alembic_version'"
        )
    finally:
        await conn.close()
    in_database = {r["conname"] for r in rows}
    in_models = {
        str(constraint.name)
        for table in metadata.tables.values()
        for constraint in table.constraints
    }
    # The domains' checks (conrelid 0) against the models' DOMAIN column types.
    in_models |= {
        str(column.type.constraint_name)
        for table in metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, DOMAIN)
    }
    assert in_database == in_models
