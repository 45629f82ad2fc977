"""The database: engine, naming convention, and the one unit of work.

Rule: exactly one piece of code opens and commits a transaction that may end in a refusal,
`unit_of_work()` below. A request's transaction is one (`transaction()`, which commits *before*
the response is sent: FastAPI runs a `scope="function"` dependency's exit right after the
endpoint returns, so a failed COMMIT reaches the client as an error), and so are the requests
that manage their own (a node-to-node call, a cross-network trade). Services never commit.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import BigInteger, MetaData, Text, event
from sqlalchemy.dialects.postgresql import DOMAIN
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.operators import OperatorClass

from mutualcredit.config import Settings
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


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """How long the service waits on the database, so that a stalled link (a partition: the
    connection stays open, no bytes arrive) costs a request seconds, not the whole stall.

    - `connect`: opening a connection, its handshake included (asyncpg's `timeout`; its
      default is 60 s).
    - `statement`: PostgreSQL cancels a statement after this (`statement_timeout`), and the
      service stops waiting for an answer `ANSWER_GRACE` seconds later (asyncpg's
      `command_timeout`): on a working link the server's cancellation arrives first, as an
      error the connection survives; on a stalled one nothing arrives, and the connection is
      dropped at once, since whatever it was doing has an unknown outcome.
    - `pool`: waiting for a free connection of a pool (SQLAlchemy's `pool_timeout`, asyncpg's
      `acquire(timeout=...)`).

    Each session also asks the server to probe its client with TCP keepalives and to give up
    on data the client does not acknowledge (`SERVER_KEEPALIVES`): when the service's side of
    a partition goes away, the server ends its sessions, and so releases their locks, within
    about half a minute instead of the kernel's quarter of an hour. (PostgreSQL ignores them
    on a unix socket.)
    """

    connect: float
    statement: float
    pool: float

    @classmethod
    def of(cls, settings: Settings) -> "DatabaseTimeouts":
        """The timeouts the settings give (MUTUALCREDIT_DATABASE_*_TIMEOUT_SECONDS)."""
        return cls(
            connect=settings.database_connect_timeout_seconds,
            statement=settings.database_statement_timeout_seconds,
            pool=settings.database_pool_timeout_seconds,
        )

    def connect_args(self) -> dict[str, Any]:
        """Arguments of asyncpg's connect, for the engine and the write path's pool alike."""
        return {
            "timeout": self.connect,
            "command_timeout": self.statement + ANSWER_GRACE,
            "server_settings": {
                "statement_timeout": str(round(self.statement * 1000)),
                **SERVER_KEEPALIVES,
            },
        }


# Seconds the service waits for an answer beyond the server's own statement_timeout.
ANSWER_GRACE = 1.0
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def create_engine(
    url: str, *, pool_size: int = 10, timeouts: DatabaseTimeouts | None = None
) -> AsyncEngine:
    """The request engine. READ COMMITTED: the lock protocol assumes it. (The trade write
    path has its own asyncpg pool: trades/booker.py.) Without `timeouts` (the command line's
    commands, whose statements may run long), only asyncpg's defaults bound the waits."""
    options: dict[str, Any] = {}
    if timeouts is not None:
        options = {"connect_args": timeouts.connect_args(), "pool_timeout": timeouts.pool}
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
        **options,
    )
    if timeouts is not None:
        event.listen(engine.sync_engine, "handle_error", _timeout_is_a_disconnect)
        event.listen(engine.sync_engine.pool, "invalidate", _terminate_timed_out)
    return engine


def _timeout_is_a_disconnect(context: ExceptionContext) -> None:
    """A statement that got no answer in time leaves its connection in an unknown state (the
    statement may still run, or the link is gone): SQLAlchemy is told to discard it, as it
    would a broken connection, instead of handing it out again."""
    if isinstance(context.original_exception, TimeoutError):
        context.is_disconnect = True


def _terminate_timed_out(
    dbapi_connection: Any, record: ConnectionPoolEntry, exception: BaseException | None
) -> None:
    """A connection discarded for a timeout (of a statement, or of the pool's pre-ping) is
    closed at once: a graceful close would first wait for the cancellation of its statement,
    which a stalled link never delivers."""
    if isinstance(exception, TimeoutError) and dbapi_connection is not None:
        dbapi_connection.driver_connection.terminate()


async def create_write_pool(
    url: str,
    *,
    size: int,
    timeouts: DatabaseTimeouts,
    reset: Callable[[asyncpg.Connection], Awaitable[None]],
) -> asyncpg.Pool:
    """The trade write path's asyncpg pool (trades/booker.py says why it has its own). It
    connects lazily (`min_size=0`), so the service starts, and /readyz answers, while the
    database is down. Take its connections with `write_connection`: asyncpg's pool has no
    default wait."""
    return await asyncpg.create_pool(
        plain_url(url), min_size=0, max_size=size, reset=reset, **timeouts.connect_args()
    )


class write_connection:  # named as what it is used as, like contextlib.suppress
    """A connection of the write path's pool, waited for at most `wait` seconds.

    The wait is an `asyncio.timeout` around the acquire rather than asyncpg's own
    `acquire(timeout=...)`, which on Python 3.11 runs every acquire in a task of its own; and
    this is a class rather than a generator-based context manager: on the trade path, which
    takes two connections a trade, each costs microseconds (bench/README.md). A statement on
    the connection that times out terminates it (asyncpg would otherwise try to cancel the
    statement and make the release wait for that): its outcome is unknown, which the ledger's
    keys make safe to retry, and on a stalled link the cancellation never arrives."""

    __slots__ = ("conn", "pool", "wait")

    def __init__(self, pool: asyncpg.Pool, wait: float | None) -> None:
        self.pool = pool
        self.wait = wait

    async def __aenter__(self) -> Any:
        async with asyncio.timeout(self.wait):
            self.conn = await self.pool.acquire()
        return self.conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, TimeoutError):
            self.conn.terminate()
        await self.pool.release(self.conn)


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
