"""Booking trades: one SQL statement per trade, or per batch of trades.

Each booking is a single statement on a connection of the write path's own asyncpg pool, outside
any explicit transaction: the statement is its own transaction and has committed (durably) when
the driver returns, so the answer to the client always follows the commit, in one round trip.
asyncpg directly (prepared statements cached per connection, no ORM, no pool pre-ping) because
on this path the client library's own CPU is the ceiling (bench/README.md has the profile).

With batching on, each worker gathers the trades that arrive while earlier batches are in
flight and books them with one mc_create_trades call per network (mc_create_trade for a
lone trade). Nothing waits on a timer:
at low load a batch is one trade; under load, batches grow by themselves, and a busy account is
locked once per batch instead of once per trade. Every trade keeps its own outcome and its own
idempotency key. If a batch fails as a whole (a trade raised an error), its trades are booked
again one by one, so that one bad trade never fails its batch-mates.
"""

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field

import asyncpg

from mutualcredit.db import write_connection
from mutualcredit.errors import database_unreachable
from mutualcredit.observability import BATCH_SIZE
from mutualcredit.trades.repository import (
    CREATE_TRADE,
    CREATE_TRADES,
    Booking,
    LedgerResult,
    batch_args,
    result_of,
)

log = logging.getLogger("mutualcredit.booker")


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRequest(Booking):
    """A trade waiting to be booked, and where its outcome goes."""

    future: asyncio.Future[LedgerResult] = field(default_factory=asyncio.Future)


class Booker:
    """Books one trade per statement (batch_size 1) or batches (batch_size > 1)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        flushers: int,
        batch_size: int,
        acquire_timeout: float | None = None,
    ) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout
        self.batch_size = batch_size
        self.flushers = flushers
        self._queue: asyncio.Queue[TradeRequest] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.batch_size > 1:
            self._tasks = [asyncio.create_task(self._flush_forever()) for _ in range(self.flushers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def book(self, request: TradeRequest) -> LedgerResult:
        if self.batch_size <= 1:
            return await self._one(request)
        self._queue.put_nowait(request)
        return await request.future

    async def _one(self, r: TradeRequest) -> LedgerResult:
        async with write_connection(self.pool, self.acquire_timeout) as conn:
            row = await conn.fetchrow(CREATE_TRADE, *r.args())
        return result_of(row)

    async def _flush_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                by_network: dict[uuid.UUID, list[TradeRequest]] = {}
                for item in batch:
                    by_network.setdefault(item.network_id, []).append(item)
                for group in by_network.values():
                    await self._book_group(group)
            except Exception as exc:
                # A flusher must outlive any failure: were it to die, every later trade would
                # wait for ever. Fail this batch's requests (clients retry) and go on.
                log.exception("booking a batch failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)

    async def _book_group(self, group: list[TradeRequest]) -> None:
        BATCH_SIZE.observe(len(group))
        try:
            results = await self._batch(group)
        except Exception as exc:
            if len(group) == 1 or database_unreachable(exc):
                for item in group:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            log.warning("a batch of %d failed (%s); booking one by one", len(group), exc)
            for item in group:
                try:
                    item.future.set_result(await self._one(item))
                except Exception as one_exc:
                    item.future.set_exception(one_exc)
            return
        for item, result in zip(group, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def _batch(self, group: list[TradeRequest]) -> list[LedgerResult]:
        if len(group) == 1:
            # A lone trade (most batches at moderate load) skips the batch wrapper, whose own
            # statements (every key's lock, every account's lock, the arrays) only pay off when
            # shared: about 15% more trades per second in PostgreSQL (bench/README.md).
            return [await self._one(group[0])]
        async with write_connection(self.pool, self.acquire_timeout) as conn:
            rows = await conn.fetch(CREATE_TRADES, *batch_args(group))
        return [result_of(row) for row in rows]
