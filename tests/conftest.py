"""Test fixtures: real PostgreSQL, built by running the migrations.

Server: MUTUALCREDIT_TEST_DATABASE_URL (or MUTUALCREDIT_DATABASE_URL) if set, else an embedded
PostgreSQL (pgserver) in a temporary directory. Either way the session creates its own database,
runs the migrations on it, and drops it at the end.

Isolation: every test works in networks of its own (unique codes), and networks are the tenant
boundary, so tests never see each other's data. Writes are really committed, as in production:
commit-time failures and concurrency behave as they do for clients.
"""

import base64
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from mutualcredit import embedded, jobs, migrate
from mutualcredit.app import create_app
from mutualcredit.audit import service as audit
from mutualcredit.auth import service as keys
from mutualcredit.auth.models import Role
from mutualcredit.config import Settings
from mutualcredit.db import create_engine, make_sessionmaker
from mutualcredit.ledger_checks import run_checks
from mutualcredit.networks.models import Network
from tests.answers import AnswerLog
from tests.helpers import Api


def _configured_url() -> str | None:
    return os.environ.get("MUTUALCREDIT_TEST_DATABASE_URL") or os.environ.get(
        "MUTUALCREDIT_DATABASE_URL"
    )


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = _configured_url()
    if url:
        yield url
        return
    server, url = embedded.start(Path(tempfile.mkdtemp(prefix="mc-test-")), cleanup="delete")
    yield url
    server.cleanup()


async def create_database(server_url: str, prefix: str = "mc_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return embedded.database_url(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    name = url.split("?")[0].rsplit("/", 1)[1]
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    url = await create_database(server_url)
    await migrate.upgrade(url)
    yield url
    # Every test's writes are committed; the session ends with the ledger's own audit, and with
    # every network's audit chain sealed and verified (but those a test broke on purpose).
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        report = await run_checks(conn)
    sessionmaker = make_sessionmaker(engine)
    await jobs.seal_audit(sessionmaker)
    broken_chains = {}
    async with sessionmaker() as session:
        for net in await session.scalars(select(Network)):
            if net.code.startswith("tampered"):
                continue
            verification = await audit.verify(session, net.id, net.code)
            if not verification.ok:
                broken_chains[net.code] = verification.first_broken
    await engine.dispose()
    await drop_database(server_url, url)
    assert report.ok, f"ledger audit failed after the test session: {report.failures}"
    assert not broken_chains, f"audit chains broken after the test session: {broken_chains}"


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        pool_size=20,
        sweep_interval_seconds=0.2,
        secret_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Every answer is noted, and must be one the OpenAPI document declares (tests/answers.py).
    log = AnswerLog(app)
    transport = httpx.ASGITransport(app=log)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    undeclared = log.undeclared(app.openapi())
    assert not undeclared, f"answers the OpenAPI document does not declare: {undeclared}"


@pytest.fixture(scope="session")
async def platform_token(app: FastAPI) -> str:
    async with app.state.sessionmaker.begin() as session:
        _, token = await keys.create_key(session, role=Role.platform, label="tests")
    return token


@pytest.fixture
async def api(client: httpx.AsyncClient, platform_token: str) -> Api:
    return Api(client, platform_token)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection, for what a client cannot do: direct SQL against the invariants."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()
