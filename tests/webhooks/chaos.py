"""The webhook fault run: events delivered through receivers that go down, slow down and fail,
and a service and a PostgreSQL that are killed and restarted, all while tills trade.

One service process on its own embedded PostgreSQL (tests/faults/chaos.py's Cluster) delivers to
three endpoints, each with its own receiver process (receiver.py, which verifies every delivery
with the `standardwebhooks` package and logs it to a file that outlives a kill):

    all       every event of the network
    posted    `trade.posted` only
    shop      every event about the account `shop`

Tills post trades, and holds that they then post or void, with Idempotency-Keys, retrying as a
till would; some are refused for limits. Meanwhile, faults: each receiver in turn is stopped
(SIGKILL, started again later: minutes in the long run), slowed (some answers past the service's
timeout) or made to answer 500 a few times before 200; the service is killed with kill -9 while
a receiver holds a delivery (then started again), PostgreSQL is restarted (fast and immediate
shutdown), the service's connections are terminated, and the service is paused (SIGSTOP). The
retry schedule is scaled down (MUTUALCREDIT_WEBHOOK_RETRY_SCALE) so that retries happen within
the run, yet a receiver's longest outage stays shorter than the whole schedule: an event whose
schedule is spent is `failed` by design, which the run would report as missing.

Then the faults stop, the tills settle what they were unsure of, delivery drains (a bounded
wait), and the run checks, per endpoint, against the feed (GET …/events, filtered like the
endpoint, from the endpoint's cursor at creation, paged to the end):

    missing           an event of the feed with no 2xx answer from the receiver     must be 0
                      (missing_before_last_delivered: of those, any that a later event
                      overtook: a hole, not a backlog the wait ran out on)
    invented          a delivery whose webhook-id is no event of the feed for it    must be 0
    body_mismatch     a delivery whose body differs from the feed's event           must be 0
                      (so every repeat of a webhook-id carries the identical body)
    unverified        a delivery standardwebhooks does not verify with the secret   must be 0
    out_of_order      the first arrival of an event before that of an earlier seq   must be 0
    log_missing       an event with no `delivered` row in GET …/webhooks/{id}/attempts  must be 0
    log_failed        `failed` rows (a schedule spent): the run is tuned for none   must be 0
    duplicates        2xx deliveries beyond the first of a webhook-id (allowed: at least once)
    delay             first 2xx arrival minus the event's occurred_at (p50, p99, max)

and the feed against the tills: every trade, post and void acknowledged is an event, and every
trade event is of a trade a till was acknowledged (none invented, none from a refusal).

Short in CI (tests/webhooks/test_chaos.py), long on demand:

    python -m tests.webhooks.chaos --seconds 300 --report bench/results/webhooks-chaos-long.json
"""

import argparse
import asyncio
import base64
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.faults.chaos import (
    ACCOUNTS,
    BUSY,
    NETWORK,
    Attempt,
    Cluster,
    bootstrap,
    deliver,
    inject_database_or_pause,
    run_in_thread,
)
from tests.webhooks.conftest import Receiver

# The endpoints: name -> (event types or None for all, account or None for all).
ENDPOINTS: dict[str, tuple[list[str] | None, str | None]] = {
    "all": (None, None),
    "posted": (["trade.posted"], None),
    "shop": (None, "shop"),
}
# The per-endpoint and feed figures that must be 0 after the run: the guarantees.
MUST_BE_ZERO = (
    "missing",
    "missing_before_last_delivered",
    "invented",
    "body_mismatch",
    "id_not_event_id",
    "unverified",
    "out_of_order",
    "log_missing",
    "log_invented",
    "log_failed",
)
FEED_MUST_BE_ZERO = (
    "acknowledged_without_event",
    "trade_events_without_till",
    "refused_with_event",
    "seq_not_increasing",
)
# What a receiver answers with when no fault is on: slow enough that a kill -9 of the service
# finds a delivery in flight.
BASE_DELAY = 0.02


@dataclass
class Resolution:
    """Posting or voiding a hold, with its own Idempotency-Key."""

    trade_id: str
    action: str  # post | void
    key: str
    outcome: str = "unknown"  # acknowledged | unknown


@dataclass
class Plan:
    """How hard the run pushes: times in seconds."""

    seconds: float
    fault_every: float = 4.0  # between faults of the service and its database
    receiver_gap: tuple[float, float] = (3.0, 8.0)  # between faults of one receiver
    receiver_down: tuple[float, float] = (4.0, 10.0)  # how long a receiver stays stopped
    # Two tills at about three sales a second each: within what one-at-a-time delivery keeps up
    # with between faults, so that the backlog a fault leaves is worked off during the run.
    tills: int = 2
    pace: float = 0.3  # a till's pause between two sales
    retry_scale: float = 0.002
    drain: float = 240.0  # the most the run waits for delivery to catch up


@dataclass
class Run:
    faults: Counter[str] = field(default_factory=Counter)
    attempts: list[Attempt] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)


@dataclass
class Endpoint:
    name: str
    types: list[str] | None
    account: str | None
    receiver: Receiver
    id: str = ""
    secret: str = ""
    cursor: int = 0  # at creation: events after it are this endpoint's


def _settings(workdir: Path, plan: Plan) -> dict[str, str]:
    return {
        "MUTUALCREDIT_WEBHOOK_RETRY_SCALE": str(plan.retry_scale),
        "MUTUALCREDIT_WEBHOOK_INTERVAL_SECONDS": "0.1",
        "MUTUALCREDIT_WEBHOOK_TIMEOUT_SECONDS": "2",
        "MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE": "true",  # the receivers listen on loopback
        "MUTUALCREDIT_SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "MUTUALCREDIT_DATA_DIR": str(workdir),
    }


async def _create_endpoints(cluster: Cluster, token: str, endpoints: list[Endpoint]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30) as client:
        for e in endpoints:
            body: dict[str, Any] = {"url": e.receiver.url, "description": e.name}
            if e.types is not None:
                body["event_types"] = e.types
            if e.account is not None:
                body["account"] = e.account
            r = await client.post(
                f"{cluster.base}/v1/networks/{NETWORK}/webhooks", json=body, headers=headers
            )
            assert r.status_code == 201, r.text
            made = r.json()
            e.id, e.secret, e.cursor = made["id"], made["secret"], made["cursor"]


async def _start(receiver: Receiver, secret: str) -> None:
    await asyncio.to_thread(receiver.start, secret)
    await asyncio.to_thread(receiver.control, delay=BASE_DELAY)


async def _resolve(
    client: httpx.AsyncClient,
    base: str,
    headers: dict[str, str],
    resolution: Resolution,
    stop: asyncio.Event | None,
) -> None:
    """Posts or voids a hold until there is an answer, with the same key every time."""
    url = f"{base}/{resolution.trade_id}/{resolution.action}"
    backoff, tries = 0.05, 0
    while stop is None or not stop.is_set():
        tries += 1
        try:
            r = await client.post(url, headers={**headers, "Idempotency-Key": resolution.key})
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 200:
            resolution.outcome = "acknowledged"
            return
        if r is not None and r.status_code not in (429, 500, 502, 503):
            raise AssertionError(f"unexpected answer {r.status_code} {r.text}")
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 1.0)
        if stop is None and tries > 200:
            raise AssertionError(f"no answer for {resolution.key} after the faults stopped")


async def till(
    n: int, cluster: Cluster, token: str, run: Run, stop: asyncio.Event, plan: Plan
) -> None:
    """Sales, and holds that are posted or voided a moment later; members' modest limits make
    some refused."""
    rng = random.Random(1000 + n)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{cluster.base}/v1/networks/{NETWORK}/trades"
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not stop.is_set():
            if rng.random() < 0.5:
                payer, payee = rng.choice(ACCOUNTS), rng.choice(BUSY)
                if rng.random() < 0.5:
                    payer, payee = payee, payer
            else:
                payer, payee = rng.sample(ACCOUNTS, 2)
            attempt = Attempt(uuid.uuid4().hex, payer, payee, rng.randint(1, 400))
            attempt.pending = rng.random() < 0.25
            run.attempts.append(attempt)
            await deliver(client, base, headers, attempt, stop)
            if attempt.pending and attempt.outcome == "acknowledged" and not stop.is_set():
                await asyncio.sleep(rng.uniform(0, 0.3))
                assert attempt.trade_id is not None
                action = "post" if rng.random() < 0.6 else "void"
                resolution = Resolution(attempt.trade_id, action, uuid.uuid4().hex)
                run.resolutions.append(resolution)
                await _resolve(client, base, headers, resolution, stop)
            await asyncio.sleep(plan.pace)


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleeps, or returns early (True) once the run is told to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except TimeoutError:
        return False


async def _kill_mid_delivery(cluster: Cluster, endpoints: list[Endpoint]) -> bool:
    """kill -9 of the service as soon as a receiver holds a delivery; True when one did. (It
    waits for one a while: an earlier fault may have left every endpoint waiting for a lease.)"""
    deadline = time.monotonic() + 20
    found = False
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline and not found:
            for e in endpoints:
                try:
                    r = await client.get(f"{e.receiver.url}/state")
                except httpx.HTTPError:
                    continue
                if r.json()["inflight"] > 0:
                    found = True
                    break
            else:
                await asyncio.sleep(0.005)
    cluster.kill_service()
    return found


async def inject_service(
    cluster: Cluster, endpoints: list[Endpoint], run: Run, stop: asyncio.Event, plan: Plan
) -> None:
    """Faults of the service and its database, every kind in each round, in a shuffled order."""
    rng = random.Random(7)
    kinds = ["kill_service", "restart_db_fast", "restart_db_immediate", "terminate_backends",
             "pause_service"]  # fmt: skip
    while True:
        round_ = rng.sample(kinds, len(kinds))
        for fault in round_:
            if await _pause(stop, plan.fault_every):
                return
            if fault == "kill_service":
                if await _kill_mid_delivery(cluster, endpoints):
                    fault = "kill_service_mid_delivery"
            else:
                await inject_database_or_pause(cluster, fault, rng)
            run.faults[fault] += 1


async def inject_receiver(
    n: int, endpoint: Endpoint, run: Run, stop: asyncio.Event, plan: Plan
) -> None:
    """Faults of one receiver, each kind in turn (each receiver starting at another): stopped
    for a while, slow (some answers past the service's 2 s timeout), or 500 a few times before
    200. After each, the next waits until the receiver has answered a delivery 2xx again: the
    attempts of one event then span one outage, never several, so that the run's retry scale
    keeps every event within its schedule (eight attempts), as planned."""
    rng = random.Random(100 + n)
    receiver = endpoint.receiver
    kinds = ["receiver_down", "receiver_slow", "receiver_500"]
    kinds = kinds[n % 3 :] + kinds[: n % 3]
    while True:
        for fault in kinds:
            if await _pause(stop, rng.uniform(*plan.receiver_gap)):
                return
            if fault == "receiver_down":
                await asyncio.to_thread(receiver.stop)
                try:
                    await _pause(stop, rng.uniform(*plan.receiver_down))
                finally:
                    await _start(receiver, endpoint.secret)
            elif fault == "receiver_slow":
                await asyncio.to_thread(receiver.control, delay=rng.uniform(0.5, 2.5))
                try:
                    await _pause(stop, rng.uniform(3.0, 8.0))
                finally:
                    await asyncio.to_thread(receiver.control, delay=BASE_DELAY)
            else:
                await asyncio.to_thread(receiver.control, fail=rng.randint(1, 3))
            run.faults[fault] += 1
            restored = time.time()
            while not any(
                200 <= got["status"] < 300 and got["at"] > restored for got in _received(endpoint)
            ):
                if await _pause(stop, 0.5):
                    return


def _received(endpoint: Endpoint) -> list[dict[str, Any]]:
    """Every delivery the receiver got, across its restarts, in the order it got them."""
    assert endpoint.receiver.log is not None
    if not endpoint.receiver.log.exists():
        return []
    lines = endpoint.receiver.log.read_text().splitlines()
    return [json.loads(line) for line in lines]


async def _feed(
    client: httpx.AsyncClient, base: str, token: str, endpoint: Endpoint | None
) -> list[dict[str, Any]]:
    """The feed from the endpoint's cursor at creation, filtered like it (the whole feed for
    None), paged to the end."""
    params: dict[str, Any] = {"limit": 500, "after": endpoint.cursor if endpoint else 0}
    if endpoint is not None and endpoint.types is not None:
        params["types"] = ",".join(endpoint.types)
    if endpoint is not None and endpoint.account is not None:
        params["account"] = endpoint.account
    events: list[dict[str, Any]] = []
    while True:
        r = await _get(client, f"{base}/events", token, params)
        page = r.json()
        events += page["items"]
        if not page["items"]:
            return events
        params["after"] = page["next_after"]


async def _get(
    client: httpx.AsyncClient, url: str, token: str, params: dict[str, Any]
) -> httpx.Response:
    r = await client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r


async def _log(
    client: httpx.AsyncClient, base: str, token: str, endpoint: Endpoint
) -> list[dict[str, Any]]:
    """The endpoint's delivery log, every page."""
    params: dict[str, Any] = {"limit": 500}
    rows: list[dict[str, Any]] = []
    while True:
        page = (await _get(client, f"{base}/webhooks/{endpoint.id}/attempts", token, params)).json()
        rows += page["items"]
        if page["next_cursor"] is None:
            return rows
        params["cursor"] = page["next_cursor"]


def _first_2xx(received: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for got in received:
        if 200 <= got["status"] < 300:
            first.setdefault(got["id"], got)
    return first


async def _drained(
    client: httpx.AsyncClient, base: str, token: str, endpoints: list[Endpoint]
) -> bool:
    """Every event of each endpoint answered 2xx, and logged delivered."""
    for e in endpoints:
        expected = {ev["id"] for ev in await _feed(client, base, token, e)}
        if expected - set(_first_2xx(_received(e))):
            return False
        logged = {
            a["event_id"] for a in await _log(client, base, token, e) if a["outcome"] == "delivered"
        }
        if expected - logged:
            return False
    return True


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"]).timestamp()


def check_endpoint(
    endpoint: Endpoint, feed: list[dict[str, Any]], log: list[dict[str, Any]]
) -> dict[str, Any]:
    """An endpoint's figures: what the feed says it should have got, against what its receiver
    got and what its delivery log says."""
    received = _received(endpoint)
    by_id = {ev["id"]: ev for ev in feed}
    first_2xx = _first_2xx(received)
    seqs: list[int] = []
    seen: set[str] = set()
    for got in received:
        if got["id"] not in seen and got["id"] in by_id:
            seen.add(got["id"])
            seqs.append(by_id[got["id"]]["seq"])
    last_delivered = max((by_id[i]["seq"] for i in first_2xx if i in by_id), default=0)
    out_of_order = sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    delays = sorted(first_2xx[ev["id"]]["at"] - _at(ev) for ev in feed if ev["id"] in first_2xx)
    ok = [g for g in received if 200 <= g["status"] < 300]
    delivered_rows = [a for a in log if a["outcome"] == "delivered"]
    return {
        "events": len(feed),
        "deliveries": len(received),
        "deliveries_2xx": len(ok),
        "answered_500": sum(1 for g in received if g["status"] == 500),
        "missing": sum(1 for ev in feed if ev["id"] not in first_2xx),
        # Of those, any before the last event delivered: skipped, where the rest is a backlog
        # still being worked off when the wait ran out.
        "missing_before_last_delivered": sum(
            1 for ev in feed if ev["id"] not in first_2xx and ev["seq"] < last_delivered
        ),
        "invented": sum(1 for g in received if g["id"] not in by_id),
        "body_mismatch": sum(
            1 for g in received if g["id"] in by_id and g["body"] != by_id[g["id"]]
        ),
        "id_not_event_id": sum(1 for g in received if g["id"] != g["body"].get("id")),
        "unverified": sum(1 for g in received if g["verified_by"] != [0]),
        "out_of_order": out_of_order,
        "duplicates": len(ok) - len(first_2xx),
        "log_rows": len(log),
        "log_missing": len({ev["id"] for ev in feed} - {a["event_id"] for a in delivered_rows}),
        "log_invented": sum(1 for a in log if a["event_id"] not in by_id),
        "log_failed": sum(1 for a in log if a["outcome"] == "failed"),
        "log_retrying": sum(1 for a in log if a["outcome"] == "retrying"),
        "delay_p50_s": round(statistics.median(delays), 3) if delays else None,
        "delay_p99_s": round(delays[int(len(delays) * 0.99)], 3) if delays else None,
        "delay_max_s": round(delays[-1], 3) if delays else None,
    }


def check_feed(run: Run, feed: list[dict[str, Any]]) -> dict[str, Any]:
    """The feed against the tills: each acknowledged change is an event, and each trade event
    is of a trade a till was acknowledged."""
    trade_events = [ev for ev in feed if ev["type"].startswith("trade.")]
    seen = {(ev["type"], ev["data"]["trade"]["id"]) for ev in trade_events}
    acknowledged = [a for a in run.attempts if a.outcome == "acknowledged"]
    wanted = {("trade.held" if a.pending else "trade.posted", a.trade_id) for a in acknowledged}
    wanted |= {
        ("trade.posted" if r.action == "post" else "trade.voided", r.trade_id)
        for r in run.resolutions
        if r.outcome == "acknowledged"
    }
    keys = {a.key for a in acknowledged}
    refused = {a.key for a in run.attempts if a.outcome == "refused"}
    seqs = [ev["seq"] for ev in feed]
    return {
        "events": len(feed),
        "events_by_type": dict(Counter(ev["type"] for ev in feed)),
        "acknowledged_without_event": len(wanted - seen),
        "trade_events_without_till": sum(
            1 for ev in trade_events if ev["data"]["trade"]["key"] not in keys
        ),
        "refused_with_event": sum(
            1 for ev in trade_events if ev["data"]["trade"]["key"] in refused
        ),
        "seq_not_increasing": sum(1 for a, b in itertools.pairwise(seqs) if b <= a),
    }


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The run in a few numbers: what was delivered, how late at worst, and every guarantee
    broken (none, when all is well)."""
    endpoints: dict[str, dict[str, Any]] = figures["endpoints"]
    broken = {
        f"{name}.{key}": e[key] for name, e in endpoints.items() for key in MUST_BE_ZERO if e[key]
    }
    broken |= {
        f"feed.{key}": figures["feed"][key] for key in FEED_MUST_BE_ZERO if figures["feed"][key]
    }
    delays = [e["delay_max_s"] for e in endpoints.values() if e["delay_max_s"] is not None]
    return {
        "events_to_deliver": sum(e["events"] for e in endpoints.values()),
        "deliveries": sum(e["deliveries"] for e in endpoints.values()),
        "duplicates": sum(e["duplicates"] for e in endpoints.values()),
        "answered_500": sum(e["answered_500"] for e in endpoints.values()),
        "faults_injected": figures["faults_injected"],
        "delay_max_s": max(delays, default=None),
        "broken": broken,
    }


def _resolved(state: Run, action: str) -> int:
    return sum(1 for r in state.resolutions if r.action == action and r.outcome == "acknowledged")


async def run(plan: Plan, workdir: Path | None = None) -> dict[str, Any]:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mc-hookchaos-"))
    cluster = Cluster(workdir, _settings(workdir, plan))
    endpoints = [
        Endpoint(name, types, account, Receiver(log=workdir / f"received-{name}.jsonl"))
        for name, (types, account) in ENDPOINTS.items()
    ]
    figures: dict[str, Any] = {}
    state = Run()
    try:
        await cluster.start_database()
        token = await bootstrap(cluster)
        cluster.start_service()
        await cluster.wait_ready()
        await _create_endpoints(cluster, token, endpoints)
        for e in endpoints:
            await _start(e.receiver, e.secret)

        stop = asyncio.Event()
        started = time.monotonic()
        workers = [asyncio.create_task(till(n, cluster, token, state, stop, plan))
                   for n in range(plan.tills)]  # fmt: skip
        injectors = [asyncio.create_task(inject_service(cluster, endpoints, state, stop, plan))]
        injectors += [asyncio.create_task(inject_receiver(n, e, state, stop, plan))
                      for n, e in enumerate(endpoints)]  # fmt: skip
        await asyncio.sleep(plan.seconds)
        stop.set()
        await asyncio.gather(*injectors)
        await asyncio.gather(*workers)
        figures["seconds"] = round(time.monotonic() - started)
        figures["workdir"] = str(workdir)

        # The faults have stopped: the service whole again, every till's doubt settled with the
        # same key, then delivery is given a bounded time to catch up.
        if cluster.proc is None or cluster.proc.poll() is not None:
            cluster.start_service()
        await cluster.wait_ready()
        headers = {"Authorization": f"Bearer {token}"}
        base = f"{cluster.base}/v1/networks/{NETWORK}"
        async with httpx.AsyncClient(timeout=10) as client:
            for attempt in [a for a in state.attempts if a.outcome == "unknown"]:
                await deliver(client, f"{base}/trades", headers, attempt, None)
            for resolution in [r for r in state.resolutions if r.outcome == "unknown"]:
                await _resolve(client, f"{base}/trades", headers, resolution, None)
        drain_started = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as client:
            drained = False
            while not drained and time.monotonic() - drain_started < plan.drain:
                await asyncio.sleep(1)
                drained = await _drained(client, base, token, endpoints)
            figures["drained"] = drained
            figures["drain_seconds"] = round(time.monotonic() - drain_started)
            await asyncio.sleep(2)  # room for a duplicate to arrive, were one still coming
            feed = await _feed(client, base, token, None)
            (workdir / "feed.json").write_text(json.dumps(feed, indent=1))
            per_endpoint = {}
            for e in endpoints:
                expected = await _feed(client, base, token, e)
                log = await _log(client, base, token, e)
                # Kept beside the receivers' logs, for whoever reads a failed run.
                (workdir / f"attempts-{e.name}.json").write_text(json.dumps(log, indent=1))
                per_endpoint[e.name] = check_endpoint(e, expected, log)
        attempts = state.attempts
        figures.update(
            {
                "plan": vars(plan),
                "faults_injected": sum(state.faults.values()),
                "faults": dict(sorted(state.faults.items())),
                "trades_attempted": len(attempts),
                "trades_acknowledged": sum(1 for a in attempts if a.outcome == "acknowledged"),
                "trades_refused": sum(1 for a in attempts if a.outcome == "refused"),
                "holds_acknowledged": sum(
                    1 for a in attempts if a.pending and a.outcome == "acknowledged"
                ),
                "holds_posted": _resolved(state, "post"),
                "holds_voided": _resolved(state, "void"),
                "feed": check_feed(state, feed),
                "endpoints": per_endpoint,
            }
        )
        figures["summary"] = _summary(figures)
        return figures
    finally:
        for e in endpoints:
            e.receiver.stop()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="mutualcredit webhook fault run")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--fault-every", type=float, default=6.0)
    parser.add_argument(
        "--receiver-down",
        type=float,
        nargs=2,
        default=(90.0, 150.0),
        metavar=("MIN", "MAX"),
        help="how long a stopped receiver stays down, in seconds",
    )
    parser.add_argument("--tills", type=int, default=Plan.tills)
    # At 0.003 the schedule's waits are 0.015, 0.9, 5.4, 21.6, 54, 108 and 108 s: the seventh
    # attempt comes 190 s after the first, so an outage of up to 150 s spends six attempts at
    # most, and each event is delivered within its schedule (a spent one would be `failed`).
    parser.add_argument("--retry-scale", type=float, default=0.003)
    parser.add_argument("--drain", type=float, default=420.0)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    plan = Plan(
        seconds=args.seconds,
        fault_every=args.fault_every,
        receiver_gap=(5.0, 20.0),
        receiver_down=tuple(args.receiver_down),
        tills=args.tills,
        retry_scale=args.retry_scale,
        drain=args.drain,
    )
    started = time.monotonic()
    figures = asyncio.run(run(plan))
    figures["wall_seconds"] = round(time.monotonic() - started)
    figures["command"] = "python -m tests.webhooks.chaos " + " ".join(sys.argv[1:])
    text = json.dumps(figures, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")


__all__ = ["Plan", "run", "run_in_thread"]

if __name__ == "__main__":
    main()
