"""Webhook delivery against a fast receiver: what it costs the write path, and how late it is.

    pip install -e '.[bench]' && python bench/webhooks.py          # embedded PostgreSQL
    python bench/webhooks.py --url postgresql://postgres@127.0.0.1:5432/postgres

One run, on a scratch database, against one `mutualcredit serve` (`--workers`, 1) and one
receiver process (this script, `receiver PORT`: a small asyncio HTTP/1.1 server that keeps
connections alive, notes the arrival time and `webhook-id` of every delivery and answers 204):

1. throughput: `--rounds` pairs of wrk rounds of uniform trades (the suite's own load,
   bench/wrk/trades.lua), alternating no endpoint and one endpoint subscribed to every event
   type (none, endpoint, none, endpoint, ...), so that the shared machine's drift falls on both
   alike. Each endpoint round has an endpoint of its own (made just before it, so it starts at
   the head); after the round the script waits for its last event to arrive (`--drain` seconds
   at most; how long it took is reported), checks what the receiver got and disables it. The
   figure is the ratio of the medians, endpoint over none;
2. commit-to-delivery delay: a new endpoint, then an open-loop generator booking trades at half
   the median no-endpoint maximum for `--latency-seconds`. Per trade, the delay runs from the
   client receiving its 201 (the trade committed before that) to the receiver getting the
   trade's `trade.posted` event: p50, p90, p99 and max, and how many of the trades' events were
   delivered within `--drain` seconds of the last one;
3. after each endpoint: every event arrived exactly once (by `webhook-id`), in seq order, and
   every delivery verifies with `standardwebhooks` against the endpoint's secret (checked once
   the endpoint is drained, so the verifying costs the measurement nothing).

Both processes' clocks are the machine's monotonic clock. `--setting NAME=VALUE` (repeatable)
passes MUTUALCREDIT_NAME=VALUE to the service, to measure a setting's effect.

Writes results/webhooks.json (`--out`), with the command and the machine. The machine is shared
and noisy: read the ratios within one run, never absolute figures across runs.
"""

import argparse
import asyncio
import itertools
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import asyncpg
import httpx
import psutil
from run import (  # the suite's own (bench/run.py)
    Service,
    admin,
    describe,
    free_port,
    log,
    operator_key,
    seed_accounts,
    seed_history,
    settle,
    wrk,
)

from mutualcredit import embedded, migrate


# ------------------------------------------------------------------------------------------
# The receiver: its own process
# ------------------------------------------------------------------------------------------
class Received:
    """Every delivery, by the path it was sent to: arrival time, headers, raw body. Bodies are
    parsed and verified only when asked, after a round, so the receiver stays cheap."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[tuple[float, dict[str, str], bytes]]] = {}
        self.verified: dict[str, int] = {}

    def records(self, path: str) -> list[dict[str, Any]]:
        out = []
        for at, headers, body in self.by_path.get(path, []):
            event = json.loads(body)
            trade = event["data"].get("trade") or {}
            out.append(
                {
                    "at": at,
                    "id": headers.get("webhook-id"),
                    "seq": event["seq"],
                    "type": event["type"],
                    "trade": trade.get("id"),
                }
            )
        return out

    def verify(self, path: str, secret: str) -> dict[str, int]:
        from standardwebhooks import Webhook, WebhookVerificationError

        hook = Webhook(secret)
        done = failed = 0
        for _, headers, body in self.by_path.get(path, []):
            try:
                hook.verify(body, headers)
                done += 1
            except WebhookVerificationError:
                failed += 1
        return {"verified": done, "failed": failed}


class _ReceiverProtocol(asyncio.Protocol):
    """One connection to the receiver: HTTP/1.1 requests with a content-length, kept alive,
    answered in order. A protocol rather than streams, so that a delivery costs the receiver
    little CPU (it shares the machine with the service)."""

    def __init__(self, received: Received) -> None:
        self.received = received
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            at = time.monotonic()
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target, _ = lines[0].split(" ", 2)
            self.handle(at, method, target, headers, body)

    def handle(
        self, at: float, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        received = self.received
        path, _, query = target.partition("?")
        if path == "/_records":
            self.answer("200 OK", received.records(query))
        elif path == "/_count":
            self.answer("200 OK", len(received.by_path.get(query, [])))
        elif path == "/_verify":
            asked = json.loads(body)
            self.answer("200 OK", received.verify(asked["path"], asked["secret"]))
        elif method == "POST":
            wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
            received.by_path.setdefault(path, []).append(
                (at, {k: headers.get(k, "") for k in wanted}, body)
            )
            self.answer("204 No Content")
        else:
            self.answer("200 OK", "ready")

    def answer(self, status: str, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"HTTP/1.1 {status}\r\ncontent-length: {len(data)}\r\n"
        if data:
            head += "content-type: application/json\r\n"
        assert self.transport is not None
        self.transport.write(head.encode() + b"\r\n" + data)


async def serve_receiver(port: int) -> None:
    received = Received()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _ReceiverProtocol(received), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


class Receiver:
    """The receiver process, steered over HTTP."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "receiver", str(self.port)])
        for _ in range(200):
            try:
                httpx.get(f"{self.base}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def count(self, path: str) -> int:
        return int(httpx.get(f"{self.base}/_count?{path}", timeout=30).json())

    def records(self, path: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = httpx.get(f"{self.base}/_records?{path}", timeout=120).json()
        return got

    def verify(self, path: str, secret: str) -> dict[str, int]:
        r = httpx.post(f"{self.base}/_verify", json={"path": path, "secret": secret}, timeout=300)
        got: dict[str, int] = r.json()
        return got

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------
# Endpoints
# ------------------------------------------------------------------------------------------
class Endpoint:
    """An endpoint of the bench network, subscribed to every event type, at its own path."""

    def __init__(self, service: Service, receiver: Receiver, token: str, db: str, name: str):
        self.service, self.receiver, self.token, self.db = service, receiver, token, db
        self.path = f"/{name}"
        r = httpx.post(
            f"{service.base}/v1/networks/bench/webhooks",
            json={"url": f"{receiver.base}{self.path}"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        r.raise_for_status()
        self.id, self.secret = r.json()["id"], r.json()["secret"]
        self.start_cursor = asyncio.run(self._cursor())

    async def _cursor(self) -> int:
        conn = await asyncpg.connect(self.db)
        try:
            cursor: int = await conn.fetchval(
                "SELECT cursor FROM webhook_endpoints WHERE id = $1", uuid.UUID(self.id)
            )
            return cursor
        finally:
            await conn.close()

    async def expected(self) -> int:
        """How many events there are after the endpoint's first cursor, once all are sealed:
        every record that is an event of a trade (the load books posted trades only), and the
        disabling of an earlier round's endpoint (`webhook.disabled`)."""
        conn = await asyncpg.connect(self.db)
        try:
            # The service's sealer runs on its own schedule: wait for it, not for a signal.
            while await conn.fetchval(  # noqa: ASYNC110
                "SELECT count(*) FROM audit_log WHERE hash IS NULL"
            ):
                await asyncio.sleep(0.1)
            count: int = await conn.fetchval(
                "SELECT count(*) FROM audit_log WHERE seq > $1"
                " AND action IN ('trade.created', 'webhook_endpoint.disabled')",
                self.start_cursor,
            )
            return count
        finally:
            await conn.close()

    def drain(self, limit: float) -> dict[str, Any]:
        """Waits for the endpoint's last event (at most `limit` seconds), then disables it and
        checks what arrived."""
        started = time.monotonic()
        at_end = self.receiver.count(self.path)
        expected = asyncio.run(self.expected())
        while self.receiver.count(self.path) < expected and time.monotonic() - started < limit:
            time.sleep(0.05)
        drained = time.monotonic() - started
        time.sleep(1)  # long enough for a duplicate to arrive, were one sent
        r = httpx.patch(
            f"{self.service.base}/v1/networks/bench/webhooks/{self.id}",
            json={"enabled": False},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        r.raise_for_status()
        records = self.receiver.records(self.path)
        ids = [r["id"] for r in records]
        seqs = [r["seq"] for r in records]
        return {
            "expected": expected,
            "received": len(records),
            "unique": len(set(ids)),
            "duplicates": len(ids) - len(set(ids)),
            "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b <= a),
            "ids_match_events": all(r["id"] == f"evt_bench_{r['seq']}" for r in records),
            "received_when_the_load_stopped": at_end,
            "drain_seconds": round(drained, 2),
            "drained": len(set(ids)) >= expected,
            "signatures": self.receiver.verify(self.path, self.secret),
            "records": records,
        }


# ------------------------------------------------------------------------------------------
# Open-loop trades, each with its id and the moment its 201 arrived
# ------------------------------------------------------------------------------------------
async def open_loop_trades(
    port: int, token: str, rate: float, seconds: float, members: int
) -> dict[str, Any]:
    """bench/run.py's open loop (a fixed rate whatever the answers do, raw HTTP/1.1 over
    asyncio streams), keeping each booked trade's id and when its 201 was read."""
    rng = random.Random(7)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    booked: dict[str, float] = {}
    latencies: list[float] = []
    failures = 0

    def request() -> bytes:
        payer, payee = rng.sample(range(members), 2)
        body = f'{{"payer":"a{payer}","payee":"a{payee}","amount":1}}'.encode()
        return (
            f"POST /v1/networks/bench/trades HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def one(scheduled: float) -> None:
        nonlocal failures
        if idle.empty():
            stream = await asyncio.open_connection("127.0.0.1", port)
        else:
            stream = idle.get_nowait()
        reader, writer = stream
        try:
            writer.write(request())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            answered = time.monotonic()
            if status == 201:
                booked[json.loads(body)["id"]] = answered
            else:
                failures += 1
            idle.put_nowait(stream)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failures += 1
            writer.close()
        latencies.append(time.perf_counter() - scheduled)

    start = time.perf_counter()
    tasks = []
    n = 0
    while (scheduled := start + n / rate) < start + seconds:
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
        n += 1
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    ordered = sorted(latencies)
    return {
        "rate": round(rate),
        "sent": n,
        "failures": failures,
        "request_p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
        "request_p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "booked": booked,
    }


def delays(booked: dict[str, float], records: list[dict[str, Any]]) -> dict[str, Any]:
    """From each trade's 201 to its trade.posted event's (first) arrival, in milliseconds."""
    arrived: dict[str, float] = {}
    for r in records:
        if r["type"] == "trade.posted" and r["trade"] is not None:
            arrived.setdefault(r["trade"], r["at"])
    samples = sorted(1000 * (arrived[t] - at) for t, at in booked.items() if t in arrived)
    if not samples:
        return {"delivered": 0, "expected": len(booked)}

    def pct(p: float) -> float:
        return round(samples[min(len(samples) - 1, int(p * len(samples)))], 1)

    return {
        "expected": len(booked),
        "delivered": len(samples),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(samples[-1], 1),
        "min_ms": round(samples[0], 1),
    }


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------
async def prepare(url: str, members: int, history: int) -> str:
    await migrate.upgrade(url)
    network = await seed_accounts(url, members)
    await seed_history(url, network, members, history)
    return await operator_key(url, network)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "receiver":
        asyncio.run(serve_receiver(int(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description="webhook delivery: throughput and delay")
    parser.add_argument("--url", help="a PostgreSQL server; a scratch database is made on it")
    parser.add_argument("--seconds", type=float, default=10, help="each throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of rounds (none, endpoint)")
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument(
        "--load-fractions",
        type=lambda v: [float(f) for f in v.split(",")],
        default=[0.5, 0.25],
        help="fractions of the no-endpoint maximum to measure the delay at (0.5: the figure)",
    )
    parser.add_argument("--drain", type=float, default=120, help="most seconds to wait for it")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--setting", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    settings = {"MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE": "true"}
    for item in args.setting:
        name, _, value = item.partition("=")
        settings[f"MUTUALCREDIT_{name.upper()}"] = value

    server = None
    if args.url:
        server_url = args.url
    else:
        server, server_url = embedded.start(
            Path(tempfile.mkdtemp(prefix="mc-bench-hooks-")), cleanup="delete"
        )
    name = f"mc_bench_hooks_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = describe(
        "bench/webhooks.py", {**vars(args), "out": str(args.out), "service": settings}
    )
    service = receiver = None
    try:
        asyncio.run(admin(server_url, f'CREATE DATABASE "{name}"'))
        url = embedded.database_url(server_url, name)
        log(f"seeding {args.members} members and {args.history} trades")
        token = asyncio.run(prepare(url, args.members, args.history))
        receiver = Receiver()
        service = Service(url, args.workers, **settings)
        service.wait_ready()
        wrk(service, token, "uniform", 3, args.members)  # warm up

        log(f"throughput: {args.rounds} pairs of rounds, none and endpoint alternating")
        rps: dict[str, list[int]] = {"none": [], "endpoint": []}
        rounds = []
        for i in range(args.rounds):
            for mode in ("none", "endpoint"):
                asyncio.run(settle(url))
                endpoint = (
                    Endpoint(service, receiver, token, url, f"r{i}") if mode == "endpoint" else None
                )
                cpu = receiver.cpu_seconds()
                run = wrk(service, token, "uniform", args.seconds, args.members)
                run["receiver_cpu_percent"] = round(
                    100 * (receiver.cpu_seconds() - cpu) / args.seconds, 1
                )
                rps[mode].append(run["rps"])
                if endpoint is not None:
                    check = endpoint.drain(args.drain)
                    check.pop("records")
                    run["delivery"] = check
                rounds.append({"mode": mode, **run})
                log(f"  {mode}: {run['rps']} trades/s {run.get('delivery', '')}")
        none, with_endpoint = statistics.median(rps["none"]), statistics.median(rps["endpoint"])
        results["throughput"] = {
            "rounds": rounds,
            "none_median_rps": none,
            "endpoint_median_rps": with_endpoint,
            "ratio": round(with_endpoint / none, 3),
        }

        # Half the maximum is the figure the issue asks for; lighter loads show where
        # delivery keeps up on this machine.
        for fraction in args.load_fractions:
            rate = none * fraction
            log(f"commit-to-delivery delay: open loop at {rate:.0f} trades/s ({fraction} of max)")
            asyncio.run(settle(url))
            endpoint = Endpoint(service, receiver, token, url, f"latency-{fraction}")
            load = asyncio.run(
                open_loop_trades(service.port, token, rate, args.latency_seconds, args.members)
            )
            booked = load.pop("booked")
            check = endpoint.drain(args.drain)
            records = check.pop("records")
            figures = {
                "fraction_of_max": fraction,
                "load": load,
                "delay": delays(booked, records),
                "delivery": check,
            }
            results.setdefault("delay_at_load", []).append(figures)
            if fraction == 0.5:
                results["delay_at_half_load"] = figures
            log(json.dumps(figures))
    finally:
        if service is not None:
            service.stop()
        if receiver is not None:
            receiver.stop()
        asyncio.run(admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webhooks.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results.get(k) for k in ("throughput", "delay_at_load")}, indent=2))


if __name__ == "__main__":
    main()
