"""Slow and stalled clients against a fresh service: what is cut, when, what it costs.

    pip install -e '.[bench]' && python bench/slow_clients.py          # embedded PostgreSQL
    python bench/slow_clients.py --url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/slow_clients.py --server mutualcredit --server uvicorn --server granian \\
        --server hypercorn --throughput 10                        # the comparison of servers

One run seeds a scratch database (a network, members, an operator key), then for each server
starts the same application on it and attacks it with `--connections` (1,000) connections at
once, one kind of attack at a time:

    stalled bodies, no key    POST …/trades declaring 60,000 bytes, sending 50,000, then nothing
    stalled bodies, a key     the same with a valid operator key
    half-sent headers         a request line and half a header, then nothing
    endless chunked bodies    a valid key, Transfer-Encoding: chunked, one byte a second, forever

For every connection it records when the server closed it (and what it answered first); a
connection still open after `--observe` seconds (40) counts as held. Meanwhile a normal client
books a trade every half second over a fresh connection (its latency and failures are
reported), and the server's memory (every process of it) is sampled every half second.

Servers (`--server`, repeatable):

    mutualcredit      `mutualcredit serve`: uvicorn with the guarded protocol (server.py)
    uvicorn           stock uvicorn (httptools), its defaults: the service before server.py
    uvicorn-limited   stock uvicorn with --limit-concurrency 500
    hypercorn         hypercorn (uvloop worker) with --read-timeout 20 and --keep-alive 5
    granian           granian (ASGI) with --http1-header-read-timeout 10000

`--throughput SECONDS` adds the trade write path's throughput (wrk, uniform trades, 64
connections) of `mutualcredit` and `uvicorn`, in three alternating pairs, as a ratio.

Writes results/slow_clients.json (`--out`). Loopback only; every connection it opens, it
closes; it stops by itself.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from run import free_port, operator_key, seed_accounts, wrk  # the suite's own (bench/run.py)

from mutualcredit import embedded, migrate

ATTACKS = [
    "stalled bodies, no key",
    "stalled bodies, a key",
    "half-sent headers",
    "endless chunked bodies",
]
APP = "mutualcredit.app:app_from_env"


@dataclass
class Server:
    """One server running the application on a free port, as its own process tree."""

    kind: str
    url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        port = str(self.port)
        if self.kind == "mutualcredit":
            return [sys.executable, "-m", "mutualcredit.cli", "serve", "--no-migrate",
                    "--no-demo", "--port", port]  # fmt: skip
        if self.kind in ("uvicorn", "uvicorn-limited"):
            limited = ["--limit-concurrency", "500"] if self.kind == "uvicorn-limited" else []
            return [sys.executable, "-m", "uvicorn", APP, "--factory", "--port", port,
                    "--log-level", "warning", "--no-access-log", *limited]  # fmt: skip
        if self.kind == "hypercorn":
            return [sys.executable, "-m", "hypercorn", f"{APP}()", "--bind", f"127.0.0.1:{port}",
                    "--worker-class", "uvloop", "--read-timeout", "20", "--keep-alive", "5",
                    "--log-level", "warning"]  # fmt: skip
        if self.kind == "granian":
            return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
                    "--host", "127.0.0.1", "--port", port, "--http", "1", "--loop", "uvloop",
                    "--http1-header-read-timeout", "10000", "--log-level", "warning", APP]  # fmt: skip
        raise ValueError(f"unknown server {self.kind}")

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
        env.update(
            MUTUALCREDIT_DATABASE_URL=self.url,
            MUTUALCREDIT_RATE_LIMIT_PER_SECOND="0",
            MUTUALCREDIT_LOG_LEVEL="warning",
            MUTUALCREDIT_POOL_SIZE="20",
        )
        self.proc = subprocess.Popen(
            self.command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start")

    def rss_mb(self) -> float:
        """Resident memory of the server and every process it started."""
        assert self.proc is not None
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
            return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)
        except psutil.Error:
            return 0.0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _head(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: bench", *headers]) + "\r\n\r\n").encode()


async def _attacker(server: Server, kind: str, token: str, observe: float) -> dict[str, Any]:
    """One connection of an attack: when the server closed it, and what it said first."""
    trades = "/v1/networks/bench/trades"
    key = f"Authorization: Bearer {token}"
    json_body = "Content-Type: application/json"
    if kind == "stalled bodies, no key":
        first = _head(trades, json_body, "Idempotency-Key: x", "Content-Length: 60000")
        first += b" " * 50_000
    elif kind == "stalled bodies, a key":
        first = _head(trades, key, json_body, f"Idempotency-Key: {uuid.uuid4()}",
                      "Content-Length: 60000") + b" " * 50_000  # fmt: skip
    elif kind == "half-sent headers":
        first = b"POST /v1/networks/bench/trades HTTP/1.1\r\nHost: bench\r\nAuthoriz"
    else:
        first = _head(trades, key, json_body, f"Idempotency-Key: {uuid.uuid4()}",
                      "Transfer-Encoding: chunked")  # fmt: skip
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    except OSError as exc:
        return {"outcome": f"refused ({type(exc).__name__})", "seconds": 0.0}
    answer = b""
    closed = asyncio.Event()

    async def read() -> None:
        nonlocal answer
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                answer += chunk
        closed.set()

    async def drip() -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.write(first)
            while kind == "endless chunked bodies":
                await asyncio.sleep(1)
                writer.write(b"1\r\n \r\n")

    reading, dripping = asyncio.create_task(read()), asyncio.create_task(drip())
    try:
        await asyncio.wait_for(closed.wait(), timeout=observe)
        outcome = answer.split(b"\r\n", 1)[0].decode(errors="replace")[9:12] or "closed"
        seconds = round(time.monotonic() - started, 2)
    except TimeoutError:
        outcome, seconds = "held", observe
    finally:
        dripping.cancel()
        reading.cancel()
        writer.close()
    return {"outcome": outcome, "seconds": seconds}


async def _prober(server: Server, token: str, stop: asyncio.Event) -> list[float | None]:
    """A normal client: a trade every half second, each on a fresh connection. None: failed
    (an error, a timeout after 10 s, or an answer other than 201)."""
    latencies: list[float | None] = []
    while not stop.is_set():
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
                r = await client.post(
                    "/v1/networks/bench/trades",
                    json={"payer": "a0", "payee": "a1", "amount": 1},
                    headers={"Authorization": f"Bearer {token}",
                             "Idempotency-Key": str(uuid.uuid4())},
                )  # fmt: skip
            latencies.append(time.monotonic() - started if r.status_code == 201 else None)
        except httpx.HTTPError:
            latencies.append(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    return latencies


async def attack(
    server: Server, kind: str, token: str, connections: int, observe: float
) -> dict[str, Any]:
    baseline = server.rss_mb()
    memory: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            memory.append(server.rss_mb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)

    sampler = asyncio.create_task(sample())
    prober = asyncio.create_task(_prober(server, token, stop))
    await asyncio.sleep(1)  # the prober's and sampler's view before the attack
    results = await asyncio.gather(
        *(_attacker(server, kind, token, observe) for _ in range(connections))
    )
    stop.set()
    await sampler
    probes = await prober
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    cut = [r["seconds"] for r in results if r["outcome"] != "held"]
    answered = [p for p in probes if p is not None]
    return {
        "connections": connections,
        "outcomes": outcomes,
        "held_after_observe": outcomes.get("held", 0),
        "cut_seconds_max": max(cut) if cut else None,
        "cut_seconds_median": round(statistics.median(cut), 2) if cut else None,
        "cut_within_25s": sum(1 for s in cut if s <= 25),
        "probe_trades": len(probes),
        "probe_failures": len(probes) - len(answered),
        "probe_seconds_max": round(max(answered), 3) if answered else None,
        "probe_seconds_median": round(statistics.median(answered), 3) if answered else None,
        "memory_mb_before": baseline,
        "memory_mb_peak": max(memory) if memory else None,
        "memory_mb_after": server.rss_mb(),
    }


def throughput(url: str, token: str, seconds: float, members: int) -> dict[str, Any]:
    """The trade write path's rate through each server, in alternating pairs (3)."""
    rates: dict[str, list[int]] = {"mutualcredit": [], "uvicorn": []}
    for _ in range(3):
        for kind in rates:
            server = Server(kind, url)
            server.start()
            try:
                rates[kind].append(wrk(server, token, "uniform", seconds, members)["rps"])
            finally:
                server.stop()
    ratio = statistics.median(rates["mutualcredit"]) / statistics.median(rates["uvicorn"])
    return {"seconds": seconds, "rps": rates, "ratio_of_medians": round(ratio, 3)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a PostgreSQL server; a scratch database is made on it")
    parser.add_argument("--server", action="append", choices=["mutualcredit", "uvicorn",
                        "uvicorn-limited", "hypercorn", "granian"])  # fmt: skip
    parser.add_argument("--attack", action="append", choices=ATTACKS)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--observe", type=float, default=40.0)
    parser.add_argument("--throughput", type=float, default=0, help="seconds per wrk run")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "slow_clients.json")
    args = parser.parse_args()
    servers = args.server or ["mutualcredit"]
    attacks = args.attack or ATTACKS

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections)), hard))
    pg = None
    if args.url:
        server_url = args.url
    else:
        pg, server_url = embedded.start(Path(tempfile.mkdtemp(prefix="mc-slow-")), cleanup="delete")
    name = f"mc_slow_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = embedded.database_url(server_url, name)
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "connections": args.connections,
        "observe_seconds": args.observe,
        "servers": {},
    }
    try:
        await migrate.upgrade(url)
        network = await seed_accounts(url, args.members)
        token = await operator_key(url, network)
        for kind in servers:
            server = Server(kind, url)
            server.start()
            figures: dict[str, Any] = {}
            try:
                for name_of_attack in attacks:
                    print(f"{kind}: {name_of_attack} ...", flush=True)
                    figures[name_of_attack] = await attack(
                        server, name_of_attack, token, args.connections, args.observe
                    )
                    print(json.dumps(figures[name_of_attack]), flush=True)
                    await asyncio.sleep(2)
            finally:
                server.stop()
            results["servers"][kind] = figures
        if args.throughput:
            results["throughput"] = await asyncio.to_thread(
                throughput, url, token, args.throughput, args.members
            )
            print(json.dumps(results["throughput"]), flush=True)
    finally:
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if pg is not None:
            pg.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
