"""The ledger's SQL in a migrated database is the SQL committed in migrations/sql/, both ways.

Every function, trigger and view the migrations create has a file, and each equals its file as
PostgreSQL stores it (alembic_utils creates the file's text in a savepoint and compares what the
database makes of it with what is there, so formatting alone never counts). So a function added
without a file fails here, and so does a file edited without a migration that freezes the edit.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.replaceable_entity import ReplaceableEntity
from alembic_utils.reversible_op import CreateOp, DropOp, ReplaceOp
from sqlalchemy import Connection, text

from mutualcredit import ledger_sql, migrate
from mutualcredit.db import create_engine
from mutualcredit.models import metadata
from tests.conftest import create_database, drop_database

EntityOp = CreateOp | DropOp | ReplaceOp


@pytest.fixture(scope="module")
async def migrated_url(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url, prefix="mc_ledger_sql")
    await migrate.upgrade(url)
    yield url
    await drop_database(server_url, url)


async def _differences(
    url: str, entities: list[ReplaceableEntity], setup: str | None = None
) -> list[EntityOp]:
    """What autogenerate would write to make the database hold `entities`: create_entity (a
    file whose object is missing), replace_entity (a file whose object differs) and drop_entity
    (an object with no file). `setup` runs first, in the same transaction, rolled back after."""
    ledger_sql.register(entities)
    engine = create_engine(url, pool_size=1)

    def compare(sync_conn: Connection) -> list[EntityOp]:
        if setup is not None:
            sync_conn.execute(text(setup))
        # include_schemas: alembic_utils' comparator reads it (env.py's configure sets it).
        context = MigrationContext.configure(
            sync_conn, opts={"compare_server_default": True, "include_schemas": False}
        )
        # The operations themselves (compare_metadata gives them as tuples of text).
        script = produce_migrations(context, metadata)
        assert script.upgrade_ops is not None
        return [op for op in script.upgrade_ops.ops if isinstance(op, EntityOp)]

    try:
        async with engine.connect() as conn:
            try:
                return await conn.run_sync(compare)
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()
        ledger_sql.register()


def _described(ops: list[EntityOp]) -> list[tuple[str, str]]:
    """Each difference as (what autogenerate would do, the object's name)."""
    return sorted((type(op).__name__, op.target.signature.split("(")[0]) for op in ops)


async def test_every_function_trigger_and_view_equals_its_file(migrated_url: str) -> None:
    differences = await _differences(migrated_url, ledger_sql.entities())
    assert _described(differences) == []


async def test_every_ledger_object_in_the_database_has_a_file_and_every_file_an_object(
    migrated_url: str,
) -> None:
    """By name, from the catalogue: independent of alembic_utils' own reading of it."""
    engine = create_engine(migrated_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT p.proname FROM pg_proc p"
                    " WHERE p.pronamespace = 'public'::regnamespace"
                    " UNION ALL SELECT t.tgname FROM pg_trigger t"
                    " JOIN pg_class c ON c.oid = t.tgrelid"
                    " WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace"
                    " UNION ALL SELECT v.viewname FROM pg_views v WHERE v.schemaname = 'public'"
                )
            )
            in_database = sorted(name for (name,) in rows)
    finally:
        await engine.dispose()
    in_files = sorted(path.stem for path in ledger_sql.files())
    assert in_database == in_files
    assert in_files, "no files found: the comparison would prove nothing"
    assert len(in_files) == len(set(in_files)), "two files name one object"


def _edited(entities: list[ReplaceableEntity], name: str, old: str, new: str) -> None:
    """Replaces `old` (which must be there) in one entity's definition, as an edit of its file
    would."""
    [target] = [e for e in entities if e.signature.split("(")[0] == name]
    assert old in target.definition
    target.definition = target.definition.replace(old, new)


async def test_the_comparison_sees_each_kind_of_drift(migrated_url: str) -> None:
    """The check above can fail: an edited function body (a comment only), an edited trigger
    (its arguments), a file taken away, and an object added to the database without a file are
    each found, and nothing else is."""
    entities = ledger_sql.entities()
    _edited(entities, "mc_book", "BEGIN\n", "BEGIN\n    -- an edit without a migration\n")
    _edited(entities, "accounts_audit", "'pending_credits'", "'pending_credits', 'name'")
    entities = [e for e in entities if e.signature != "payee_approvals_audit"]
    differences = await _differences(
        migrated_url,
        entities,
        setup="CREATE FUNCTION mc_without_a_file() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    )
    assert _described(differences) == [
        ("DropOp", "mc_without_a_file"),
        ("DropOp", "payee_approvals_audit"),
        ("ReplaceOp", "accounts_audit"),
        ("ReplaceOp", "mc_book"),
    ]
    assert {type(op.target) for op in differences} == {PGFunction, PGTrigger}


def test_each_file_is_named_after_its_object_and_sits_in_a_rule_folder() -> None:
    root = ledger_sql.sql_dir()
    folders = {path.parent.relative_to(root) for path in ledger_sql.files()}
    assert folders == {
        Path(name)
        for name in (
            "audit",
            "booking",
            "federation",
            "fees",
            "guards",
            "history",
            "idempotency",
            "limits",
            "requests",
            "who_and_why",
            "zero_sum",
        )
    }
    # The README's map: a table row per rule, naming its folder and each of its files.
    rows = [line for line in (root / "README.md").read_text().splitlines() if line.startswith("|")]
    for path in ledger_sql.files():
        ledger_sql.entity(path)  # raises when the name and the file differ
        folder = f"`{path.parent.name}/"
        assert any(folder in row and f"{path.name}`" in row for row in rows), (
            f"{path.parent.name}/{path.name} is not in the README's map"
        )
