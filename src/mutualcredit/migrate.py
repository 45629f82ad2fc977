"""Applies the Alembic migrations (the schema) to a database, from a checkout or from a wheel."""

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from mutualcredit.db import async_url, create_engine


def migrations_dir() -> Path:
    """The wheel ships them as mutualcredit/_migrations; a checkout has them at the top level."""
    packaged = Path(__file__).parent / "_migrations"
    if (packaged / "env.py").exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


@functools.cache
def migration_module(filename: str) -> ModuleType:
    """An earlier migration file as a module, for a later migration that reuses its texts (to
    change a function from the text it was created with, and restore that text on downgrade)
    and its script runner."""
    path = migrations_dir() / "versions" / filename
    spec = importlib.util.spec_from_file_location(f"mc_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _run(url: str, action: Callable[[Config], None]) -> None:
    """Runs an Alembic command on a connection of our own async engine."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:

            def run(sync_conn: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync_conn
                action(config)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str) -> None:
    await _run(url, lambda config: command.downgrade(config, revision))
