"""Concurrency with real commits on many connections: limits hold and keys book once, whatever
the interleaving."""

import asyncio
import random
import uuid

import asyncpg

from tests.helpers import Api, auth, network_sums


async def test_fifty_concurrent_trades_draining_one_payer_stop_exactly_at_its_limit(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network()
    await api.account(net, "payer", credit_limit=1000)
    for n in range(5):
        await api.account(net, f"shop{n}")

    # 50 trades of 70 against a limit of 1000: exactly 14 fit (980), 36 must be refused.
    results = await asyncio.gather(*(api.pay(net, "payer", f"shop{n % 5}", 70) for n in range(50)))
    codes = [r.status_code for r in results]
    assert codes.count(201) == 14
    assert codes.count(409) == 36
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"credit_limit_exceeded"}
    payer = await api.get_account(net, "payer")
    assert payer["balance"] == -980
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_concurrent_duplicates_of_one_key_book_one_trade(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    key = str(uuid.uuid4())
    results = await asyncio.gather(*(api.pay(net, "a", "b", 10, key=key) for _ in range(20)))
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(1 for r in results if "Idempotent-Replayed" not in r.headers) == 1
    assert await api.balances(net) == {"a": -10, "b": 10}
    count = await db.fetchval(
        "SELECT count(*) FROM trades t JOIN networks n ON n.id = t.network_id WHERE n.code = $1",
        net.code,
    )
    assert count == 1


async def test_concurrent_duplicates_of_a_refused_key_all_get_the_refusal(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a", credit_limit=5)
    await api.account(net, "b")
    key = str(uuid.uuid4())
    results = await asyncio.gather(*(api.pay(net, "a", "b", 10, key=key) for _ in range(10)))
    assert {r.json()["code"] for r in results} == {"credit_limit_exceeded"}
    assert await api.balances(net) == {"a": 0, "b": 0}


async def test_crossing_trades_between_the_same_accounts_never_deadlock(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=100_000)
    codes = [f"m{n}" for n in range(4)]
    for code in codes:
        await api.account(net, code)
    rng = random.Random(7)
    pairs = [rng.sample(codes, 2) for _ in range(120)]
    results = await asyncio.gather(*(api.pay(net, p, q, rng.randint(1, 50)) for p, q in pairs))
    assert {r.status_code for r in results} == {201}, [
        r.text for r in results if r.status_code != 201
    ]
    assert sum((await api.balances(net)).values()) == 0
    assert await network_sums(db, net.code) == (0, 0, 0)


async def test_concurrent_holds_posts_and_voids_keep_the_holds_exact(
    api: Api, db: asyncpg.Connection
) -> None:
    net = await api.network(default_credit_limit=500)
    for code in ("a", "b", "c"):
        await api.account(net, code)
    holds = await asyncio.gather(*(api.pay(net, "a", "b", 20, pending=True) for _ in range(30)))
    created = [h.json() for h in holds if h.status_code == 201]
    assert len(created) == 25  # 25 x 20 = the limit of 500

    async def settle(n: int, trade: dict[str, object]) -> int:
        action = "post" if n % 2 else "void"
        r = await api.client.post(
            f"{net.base}/trades/{trade['id']}/{action}", headers=auth(net.operator)
        )
        return r.status_code

    # Each hold settled twice at once: one wins, the other is refused (not pending).
    outcomes = await asyncio.gather(
        *(settle(n, t) for n, t in enumerate(created)),
        *(settle(n + 1, t) for n, t in enumerate(created)),
    )
    assert outcomes.count(200) == 25
    assert outcomes.count(409) == 25
    a = await api.get_account(net, "a")
    assert a["pending_debits"] == 0
    posted = await db.fetchval(
        "SELECT coalesce(sum(posted_amount), 0) FROM trades t JOIN networks n"
        " ON n.id = t.network_id WHERE n.code = $1",
        net.code,
    )
    assert a["balance"] == -posted
    assert await network_sums(db, net.code) == (0, 0, 0)
