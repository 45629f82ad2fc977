"""The database: engine, naming convention, and the one unit of work.

Rule: exactly one piece of code opens and commits a transaction that may end in a refusal,
`unit_of_work()` below. A request's transaction is one (`transaction()`, which commits *before*
the response is sent: FastAPI runs a `scope="function"` dependency's exit right after the
endpoint returns, so a failed COMMIT reaches the client as an error), and so are the requests
that manage their own (a node-to-node call, a cross-network trade). Services never commit.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import BigInteger, MetaData, Text
from sqlalchemy.dialects.postgresql import DOMAIN
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.operators import OperatorClass

from mutualcredit.errors import ProblemError

NAMING_CONVENTION = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _TextDomain(DOMAIN):
    operator_classes = OperatorClass.STRING


class _IntegerDomain(DOMAIN):
    operator_classes = OperatorClass.INTEGER


def domain(name: str, data_type: Text | BigInteger, check: str) -> DOMAIN:
    """A domain the migrations create (so never created from the models), with one check named
    `<name>_check`, and the operators of its base type (SQLAlchemy 2.1 asks a type to declare
    the operators it takes)."""
    kind = _TextDomain if isinstance(data_type, Text) else _IntegerDomain
    return kind(name, data_type, check=check, constraint_name=f"{name}_check", create_type=False)


def async_url(url: str) -> str:
    """Turns any postgres URL into one for SQLAlchemy's asyncpg dialect."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def plain_url(url: str) -> str:
    """The URL for asyncpg itself (postgresql://), whatever driver the given one names."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The request engine. READ COMMITTED: the lock protocol assumes it. (The trade write
    path has its own asyncpg pool: trades/booker.py.)"""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
    )


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a session, for a hot read that the ORM would slow down.

    It is the session's own connection. A statement on it joins the request's transaction once
    the session has run a statement (SQLAlchemy's asyncpg adapter begins lazily); before that,
    it runs on its own. A single read-only statement reads committed data either way (READ
    COMMITTED)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends normally, and also when it ends with a
    refusal the ledger recorded (a `ProblemError` with `commit`, such as a refused trade key,
    which a retry must find); rolled back on any other exception."""
    async with sessionmaker() as session:
        try:
            yield session
        except ProblemError as exc:
            if exc.commit:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work (a dependency)."""
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


Session = Annotated[AsyncSession, Depends(transaction, scope="function")]
