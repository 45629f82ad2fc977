"""The feed through real `mutualcredit serve` processes: two replicas on one database, each
booking trades and running its own sealer. Under concurrent writers a reader paging the feed
sees every committed trade exactly once, in order; a long poll answers as soon as an event
arrives."""

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.service import ServiceProcess, world

POSTERS = 8
TRADES_EACH = 25


@pytest.fixture(scope="module")
def replicas(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("events-live")
    with (
        ServiceProcess(database_url, logs / "a.log", sweep_interval_seconds="0.2") as a,
        ServiceProcess(database_url, logs / "b.log", sweep_interval_seconds="0.2") as b,
    ):
        yield a, b


def _headers(net: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {net['token']}"}


async def _page(
    client: httpx.AsyncClient, net: dict[str, Any], after: int, **params: Any
) -> dict[str, Any]:
    r = await client.get(
        f"{net['base']}/events",
        params={"after": after, "types": "trade.posted", **params},
        headers=_headers(net),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_reader_paging_during_concurrent_trades_sees_each_once_in_order(
    replicas: tuple[ServiceProcess, ServiceProcess], platform_token: str
) -> None:
    a, b = replicas
    net = world(a.base, platform_token)
    booked: list[str] = []

    async def poster(n: int) -> None:
        # Each poster alternates between the replicas: commits interleave across processes.
        async with (
            httpx.AsyncClient(base_url=a.base, timeout=30) as ca,
            httpx.AsyncClient(base_url=b.base, timeout=30) as cb,
        ):
            for i in range(TRADES_EACH):
                r = await (ca if (n + i) % 2 else cb).post(
                    f"{net['base']}/trades",
                    json={"payer": "a", "payee": "b", "amount": 1 + n},
                    headers={**_headers(net), "Idempotency-Key": str(uuid.uuid4())},
                )
                assert r.status_code == 201, r.text
                booked.append(r.json()["id"])

    seen: list[dict[str, Any]] = []

    async def reader(done: asyncio.Event) -> None:
        after = 0
        async with httpx.AsyncClient(base_url=a.base, timeout=30) as client:
            while not (done.is_set() and len(seen) >= len(booked)):
                body = await _page(client, net, after, limit=7, wait=1)
                seen.extend(body["items"])
                after = body["next_after"]

    done = asyncio.Event()
    reading = asyncio.create_task(reader(done))
    await asyncio.gather(*(poster(n) for n in range(POSTERS)))
    done.set()
    await asyncio.wait_for(reading, timeout=60)

    ids = [e["data"]["trade"]["id"] for e in seen]
    assert len(booked) == POSTERS * TRADES_EACH
    assert sorted(ids) == sorted(booked), "an event was skipped or repeated"
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(set(seqs))
    # Read again in one go from the start: the same events, the same seqs.
    async with httpx.AsyncClient(base_url=b.base, timeout=30) as client:
        again = await _page(client, net, 0, limit=500)
    assert [e["id"] for e in again["items"]] == [e["id"] for e in seen]


async def test_a_long_poll_answers_as_soon_as_an_event_arrives(
    replicas: tuple[ServiceProcess, ServiceProcess], platform_token: str
) -> None:
    a, b = replicas
    net = world(a.base, platform_token)
    async with (
        httpx.AsyncClient(base_url=a.base, timeout=30) as ca,
        httpx.AsyncClient(base_url=b.base, timeout=30) as cb,
    ):
        start = time.monotonic()
        empty = await _page(ca, net, 0, wait=1)
        assert empty == {"items": [], "next_after": 0}
        assert 1 <= time.monotonic() - start < 3

        polling = asyncio.create_task(_page(ca, net, 0, wait=25))
        await asyncio.sleep(1)
        assert not polling.done()
        r = await cb.post(
            f"{net['base']}/trades",
            json={"payer": "a", "payee": "b", "amount": 5},
            headers={**_headers(net), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        committed = time.monotonic()
        body = await asyncio.wait_for(polling, timeout=25)
        latency = time.monotonic() - committed
    [event] = body["items"]
    assert event["data"]["trade"]["id"] == r.json()["id"]
    # Within a sweep (0.2 s) and a poll (0.2 s), with room for a slow shared machine.
    assert latency < 3, latency


async def test_a_change_committed_after_a_later_one_is_not_skipped(
    replicas: tuple[ServiceProcess, ServiceProcess], platform_token: str, database_url: str
) -> None:
    """A slow writer takes its audit record first and commits last. A reader already past the
    fast writer's event must still get the slow one's: an order fixed at insert would have put
    it behind the reader's cursor for good."""
    a, _ = replicas
    net = world(a.base, platform_token)
    slow = await asyncpg.connect(database_url)
    try:
        async with httpx.AsyncClient(base_url=a.base, timeout=30) as client:
            r = await client.post(
                f"{net['base']}/accounts", json={"code": "c"}, headers=_headers(net)
            )
            assert r.status_code == 201, r.text
            transaction = slow.transaction()
            await transaction.start()
            await slow.execute(
                "UPDATE accounts a SET status = 'suspended' FROM networks n"
                " WHERE n.id = a.network_id AND n.code = $1 AND a.code = 'c'",
                net["code"],
            )
            r = await client.post(
                f"{net['base']}/trades",
                json={"payer": "a", "payee": "b", "amount": 1},
                headers={**_headers(net), "Idempotency-Key": str(uuid.uuid4())},
            )
            assert r.status_code == 201, r.text
            types = {"types": "trade.posted,account.suspended"}
            first = await _page(client, net, 0, wait=10, **types)
            assert [e["type"] for e in first["items"]] == ["trade.posted"]
            await transaction.commit()
            second = await _page(client, net, first["next_after"], wait=10, **types)
            assert [e["type"] for e in second["items"]] == ["account.suspended"]
    finally:
        await slow.close()
