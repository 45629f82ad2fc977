"""The benchmark suite: the service against PostgreSQL's own limit, in one run.

    pip install -e '.[bench]' && python bench/run.py            # embedded PostgreSQL
    python bench/run.py --url postgresql://postgres@127.0.0.1:5432/postgres

One run, on one scratch database:
1. seeds a network (members, ten busy accounts, one hot account, members with no credit) and
   `--history` trades of history, then ANALYZE;
2. measures the limit: the same SQL function the service books with, driven by pgbench (no
   HTTP, no Python), at its best concurrency, for each workload; and `pgbench -N` to normalise;
3. measures the service over HTTP (`--workers` uvicorn workers, wrk as a light load generator
   whose own CPU is reported) for: uniform over the members, ten busy accounts, one account in
   every trade, and a realistic mix (5% replays, 5% refused by limits, 10% holds then posted or
   voided);
4. latency p50/p95/p99 from a fixed-rate (open-loop) run at 50% of the uniform maximum,
   measured from each request's scheduled start (no coordinated omission);
5. cost growth: uniform throughput, a balance read and a 100-entry statement page, at
   `--history` and again at `--big-history` trades;
6. service memory per worker under load;
7. the ledger's invariant checks afterwards.

Writes results/latest.json, results/latest.md and results/latest.png. The machine is shared
and noisy: read ratios within one run, never absolute figures across runs.
"""

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from mutualcredit import embedded, migrate
from mutualcredit.auth.service import hash_secret, new_token
from mutualcredit.db import create_engine
from mutualcredit.ledger_checks import run_checks

WORKLOADS = ["uniform", "busy10", "hot", "mix"]
PGBENCH_PAYEE = {
    "uniform": "'a' || :q",
    "busy10": "'busy' || :b",
    "hot": "'hot'",
}
BATCH = (
    "SELECT count(*) FROM mc_create_trades($1, $2::text[], $3::bytea[], $4::text[],"
    " $5::text[], $6::bigint[], $7::boolean[], $8::timestamptz[], $9::text[], $10::text[],"
    " $11::jsonb[], $12::text[])"
)


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def pgbench_binary() -> str:
    bundled = Path(embedded.__file__).parent  # placeholder to keep imports honest
    del bundled
    import pgserver

    candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    return str(candidate) if candidate.exists() else (shutil.which("pgbench") or "pgbench")


# ------------------------------------------------------------------------------------------
# Seeding
# ------------------------------------------------------------------------------------------
async def seed_accounts(url: str, members: int) -> uuid.UUID:
    conn = await asyncpg.connect(url)
    network = uuid.uuid4()
    await conn.execute(
        "INSERT INTO networks (id, code, name, unit_name, unit_symbol, scale,"
        " default_credit_limit) VALUES ($1, 'bench', 'Bench', 'hour', 'h', 2, 0)",
        network,
    )
    rows = [(network, f"a{i}", 10**12) for i in range(members)]
    rows += [(network, f"busy{i}", 10**12) for i in range(10)]
    rows += [(network, "hot", 10**12)]
    rows += [(network, f"poor{i}", 0) for i in range(100)]
    await conn.executemany(
        "INSERT INTO accounts (network_id, code, kind, credit_limit) VALUES ($1, $2, 'member', $3)",
        rows,
    )
    await conn.close()
    return network


async def seed_history(url: str, network: uuid.UUID, members: int, count: int) -> float:
    """Books `count` trades through mc_create_trades, 1000 a statement, on two connections;
    a quarter of them touch the busy and hot accounts so their statements have depth."""
    started = time.perf_counter()
    digest = hashlib.sha256(b"seed").digest()

    async def writer(n: int, share: int) -> None:
        conn = await asyncpg.connect(url)
        rng = random.Random(n)
        done = 0
        while done < share:
            size = min(1000, share - done)
            payers, payees = [], []
            for _ in range(size):
                payer = f"a{rng.randrange(members)}"
                roll = rng.random()
                payee = (
                    "hot"
                    if roll < 0.1
                    else f"busy{rng.randrange(10)}"
                    if roll < 0.25
                    else f"a{rng.randrange(members)}"
                )
                payers.append(payer)
                payees.append(payee)
            await conn.fetchval(
                BATCH,
                network,
                [uuid.uuid4().hex for _ in range(size)],
                [digest] * size,
                payers,
                payees,
                [rng.randint(1, 5000) for _ in range(size)],
                [False] * size,
                [None] * size,
                [""] * size,
                [None] * size,
                ["{}"] * size,
                ["seed"] * size,
            )
            done += size
        await conn.close()

    await asyncio.gather(writer(1, count // 2), writer(2, count - count // 2))
    conn = await asyncpg.connect(url)
    await conn.execute("SELECT mc_audit_seal(100000000)")
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------
# The limit: pgbench driving the same SQL function, no HTTP, no Python
# ------------------------------------------------------------------------------------------
def pgbench(url: str, args: list[str], seconds: float) -> float:
    out = subprocess.run(
        [pgbench_binary(), "-n", "-T", str(int(seconds)), *args, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


def limit_of(
    url: str, network: uuid.UUID, workload: str, seconds: float, members: int
) -> dict[str, Any]:
    payee = PGBENCH_PAYEE["uniform" if workload == "mix" else workload]
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(
        f"\\set p random(0, {members - 1})\n\\set q random(0, {members - 1})\n"
        "\\set b random(0, 9)\n"
        "SELECT outcome FROM mc_create_trade(:net, gen_random_uuid()::text, '\\x00'::bytea,"
        f" 'a' || :p, {payee}, 1, false, NULL, '', NULL, '{{}}', 'pgbench');\n"
    )
    best: dict[str, Any] = {"tps": 0.0}
    for clients in (8, 16, 32):
        tps = pgbench(
            url,
            ["-M", "prepared", "-f", str(script), "-c", str(clients), "-j", "2",
             "-D", f"net={network}"],
            seconds,
        )  # fmt: skip
        if tps > best["tps"]:
            best = {"tps": round(tps), "clients": clients}
    script.unlink()
    return best


async def pgbench_normaliser(server_url: str, seconds: float) -> float:
    name = f"mc_pgbench_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = embedded.database_url(server_url, name)
    try:
        subprocess.run(
            [pgbench_binary(), "-i", "-q", "-s", "10", url], capture_output=True, check=True
        )
        return round(pgbench(url, ["-N", "-M", "prepared", "-c", "16", "-j", "2"], seconds))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# ------------------------------------------------------------------------------------------
# The service over HTTP
# ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Service:
    def __init__(self, url: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
        env.update(
            MUTUALCREDIT_DATABASE_URL=url,
            MUTUALCREDIT_WORKERS=str(workers),
            MUTUALCREDIT_RATE_LIMIT_PER_SECOND="0",
            MUTUALCREDIT_LOG_LEVEL="warning",
            MUTUALCREDIT_POOL_SIZE="32",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mutualcredit.cli", "serve", "--no-migrate", "--no-demo",
             "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_ready(self) -> None:
        for _ in range(600):
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the service did not start")

    def worker_rss_mb(self) -> list[float]:
        parent = psutil.Process(self.proc.pid)
        procs = parent.children(recursive=True) or [parent]
        return [round(p.memory_info().rss / 2**20, 1) for p in procs if p.is_running()]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def operator_key(url: str, network: uuid.UUID) -> str:
    key_id, secret, token = new_token()
    conn = await asyncpg.connect(url)
    await conn.execute(
        "INSERT INTO api_keys (key_id, secret_hash, role, network_id, label)"
        " VALUES ($1, $2, 'operator', $3, 'bench')",
        key_id,
        hash_secret(secret),
        network,
    )
    await conn.close()
    return token


def wrk(service: Service, token: str, workload: str, seconds: float, members: int,
        memory: list[float] | None = None) -> dict[str, Any]:  # fmt: skip
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_NETWORK": "bench",
           "BENCH_WORKLOAD": workload, "BENCH_ACCOUNTS": str(members)}  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        ["wrk", "-t2", "-c64", f"-d{int(seconds)}s", "--latency", "-s",
         str(HERE / "wrk" / "trades.lua"), service.base],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    if memory is not None:
        time.sleep(seconds / 2)
        memory.extend(service.worker_rss_mb())
    out, _ = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": round(rps),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "generator_cpu_percent": round(100 * cpu / seconds, 1),
    }


async def open_loop(
    port: int, token: str, rate: float, seconds: float, members: int
) -> dict[str, Any]:
    """Sends at a fixed rate whatever the answers do, and measures each request from the
    moment it was scheduled, so a stall shows as the latency it caused.

    Raw HTTP/1.1 over asyncio streams with prebuilt requests: a generator light enough not to
    take the CPU it measures (its own CPU use is reported)."""
    rng = random.Random(3)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0
    opened = 0

    def request() -> bytes:
        payer, payee = rng.sample(range(members), 2)
        body = f'{{"payer":"a{payer}","payee":"a{payee}","amount":1}}'.encode()
        return (
            f"POST /v1/networks/bench/trades HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def one(scheduled: float) -> None:
        nonlocal failures, opened
        if idle.empty():
            opened += 1
            stream = await asyncio.open_connection("127.0.0.1", port)
        else:
            stream = idle.get_nowait()
        reader, writer = stream
        try:
            writer.write(request())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            if status != 201:
                failures += 1
            idle.put_nowait(stream)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failures += 1
            writer.close()
        latencies.append(time.perf_counter() - scheduled)

    cpu_before = time.process_time()
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
    cpu = time.process_time() - cpu_before
    while not idle.empty():
        idle.get_nowait()[1].close()
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        "rate": round(rate),
        "sent": n,
        "failures": failures,
        "connections": opened,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "generator_cpu_percent": round(100 * cpu / seconds, 1),
    }


def reads(base: str, token: str, samples: int) -> dict[str, float]:
    """Balance reads and 100-entry statement pages (from a random point of the hot account's
    history), one at a time; p50 and p99 in milliseconds."""
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(5)
    balance, page = [], []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        first = client.get("/v1/networks/bench/accounts/hot/entries", params={"limit": 1})
        oldest = datetime.fromisoformat(first.json()["items"][0]["booked_at"])
        span = (datetime.now(UTC) - oldest).total_seconds()
        for _ in range(samples):
            t = time.perf_counter()
            client.get(f"/v1/networks/bench/accounts/a{rng.randrange(1000)}").raise_for_status()
            balance.append(time.perf_counter() - t)
            since = oldest.timestamp() + rng.random() * span * 0.9
            t = time.perf_counter()
            r = client.get(
                "/v1/networks/bench/accounts/hot/entries",
                params={"limit": 100, "from": datetime.fromtimestamp(since, UTC).isoformat()},
            )
            r.raise_for_status()
            page.append(time.perf_counter() - t)

    def q(values: list[float], p: float) -> float:
        return round(1000 * statistics.quantiles(values, n=100)[int(p * 100) - 1], 2)

    return {"balance_p50_ms": q(balance, 0.5), "balance_p99_ms": q(balance, 0.99),
            "page_p50_ms": q(page, 0.5), "page_p99_ms": q(page, 0.99)}  # fmt: skip


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------
async def main() -> None:
    parser = argparse.ArgumentParser(description="the mutualcredit benchmark suite")
    parser.add_argument("--url", help="a PostgreSQL server; a scratch database is made on it")
    parser.add_argument("--seconds", type=float, default=10, help="each measurement")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--big-history", type=int, default=1_000_000)
    # One worker: on two cores shared with PostgreSQL it beat two on every measure (README).
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")

    server = None
    if args.url:
        server_url = args.url
    else:
        server, server_url = embedded.start(
            Path(tempfile.mkdtemp(prefix="mc-bench-")), cleanup="delete"
        )
    name = f"mc_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = embedded.database_url(server_url, name)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },  # fmt: skip
        "settings": {
            "seconds": args.seconds,
            "members": args.members,
            "history": args.history,
            "big_history": args.big_history,
            "workers": args.workers,
            "synchronous_commit": "on",
        },  # fmt: skip
    }
    service = None
    try:
        await migrate.upgrade(url)
        conn = await asyncpg.connect(url)
        results["postgres"] = await conn.fetchval("SHOW server_version")
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        await conn.close()
        network = await seed_accounts(url, args.members)
        log(f"seeding {args.history} trades of history")
        results["seed_seconds"] = round(
            await seed_history(url, network, args.members, args.history)
        )

        log("the limit: pgbench -N, then the ledger function per workload")
        results["pgbench_N_tps"] = await pgbench_normaliser(server_url, args.seconds)
        results["limit"] = {
            w: limit_of(url, network, w, args.seconds, args.members) for w in WORKLOADS[:3]
        }

        token = await operator_key(url, network)
        service = Service(url, args.workers)
        service.wait_ready()
        log("the service over HTTP")
        memory: list[float] = []
        results["http"] = {}
        for workload in WORKLOADS:
            wrk(service, token, workload, 3, args.members)  # warm up
            results["http"][workload] = wrk(
                service, token, workload, args.seconds, args.members,
                memory if workload == "uniform" else None,
            )  # fmt: skip
        results["memory_rss_mb"] = memory

        rate = results["http"]["uniform"]["rps"] * 0.5
        log(f"open-loop latency at {rate:.0f}/s")
        results["latency_at_half_load"] = await open_loop(
            service.port, token, rate, args.seconds, args.members
        )
        results["growth"] = {"small": {"history": args.history, "uniform_rps":
                                       results["http"]["uniform"]["rps"],
                                       **reads(service.base, token, 500)}}  # fmt: skip

        extra = args.big_history - args.history
        if extra > 0:
            log(f"growing the history to {args.big_history} trades")
            await seed_history(url, network, args.members, extra)
            wrk(service, token, "uniform", 3, args.members)
            big = wrk(service, token, "uniform", args.seconds, args.members)
            results["growth"]["big"] = {"history": args.big_history, "uniform_rps": big["rps"],
                                        **reads(service.base, token, 500)}  # fmt: skip
        service.stop()
        service = None

        engine = create_engine(url, pool_size=1)
        async with engine.connect() as c:
            report = await run_checks(c)
        await engine.dispose()
        results["invariants"] = "ok" if report.ok else report.failures
        results["ratios"] = ratios(results)
    finally:
        if service is not None:
            service.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if server is not None:
            server.cleanup()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(results))
    chart(results, args.out / "latest.png")
    print(markdown(results))


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    growth = r["growth"]
    out = {
        "uniform_http_over_limit": round(r["http"]["uniform"]["rps"] / r["limit"]["uniform"]["tps"], 2),
        "busy10_http_over_limit": round(r["http"]["busy10"]["rps"] / r["limit"]["busy10"]["tps"], 2),
        "hot_http_over_limit": round(r["http"]["hot"]["rps"] / r["limit"]["hot"]["tps"], 2),
        "p99_ms_at_half_load": r["latency_at_half_load"]["p99_ms"],
        "max_worker_rss_mb": max(r["memory_rss_mb"]) if r["memory_rss_mb"] else None,
    }  # fmt: skip
    if "big" in growth:
        out["throughput_big_over_small"] = round(
            growth["big"]["uniform_rps"] / growth["small"]["uniform_rps"], 2
        )
        out["page_p99_ms_big"] = growth["big"]["page_p99_ms"]
    return out


TARGETS = [
    ("uniform trades/s over HTTP ÷ the limit", "uniform_http_over_limit", ">=", 0.25, 0.35),
    ("one-busy-account trades/s over HTTP ÷ its limit", "hot_http_over_limit", ">=", 1.0, 1.5),
    ("p99 latency at 50% of max load (ms)", "p99_ms_at_half_load", "<=", 50, 25),
    ("throughput at big history ÷ at small", "throughput_big_over_small", ">=", 0.9, 1.0),
    ("statement page p99 at big history (ms)", "page_p99_ms_big", "<=", 20, 10),
    ("service memory per worker under load (MB)", "max_worker_rss_mb", "<=", 300, 150),
]


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark {r['date']}",
        "",
        f"{r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GiB, PostgreSQL "
        f"{r.get('postgres')}, synchronous_commit=on, {r['settings']['workers']} uvicorn "
        f"workers; load generators on the same machine. pgbench -N: {r.get('pgbench_N_tps')} tps.",
        "",
        "| workload | limit (pgbench, same SQL function) | service over HTTP | ratio | generator CPU |",
        "|---|---|---|---|---|",
    ]
    for w in WORKLOADS:
        limit = r["limit"].get(w if w != "mix" else "uniform", {})
        http = r["http"][w]
        ratio = round(http["rps"] / limit["tps"], 2) if limit.get("tps") else ""
        note = f" ({http['non_2xx']} refusals by design)" if w == "mix" else ""
        lines.append(f"| {w} | {limit.get('tps', '')} tps (c={limit.get('clients', '')}) | "
                     f"{http['rps']} req/s{note} | {ratio} | {http['generator_cpu_percent']}% |")  # fmt: skip
    lat = r["latency_at_half_load"]
    lines += ["", f"Open-loop at {lat['rate']}/s: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, "
              f"p99 {lat['p99_ms']} ms ({lat['failures']} failures; generator CPU "
              f"{lat['generator_cpu_percent']}%).", ""]  # fmt: skip
    lines += ["| history | uniform req/s | balance p50/p99 ms | statement page p50/p99 ms |",
              "|---|---|---|---|"]  # fmt: skip
    for g in r["growth"].values():
        lines.append(f"| {g['history']} | {g['uniform_rps']} | {g['balance_p50_ms']} / "
                     f"{g['balance_p99_ms']} | {g['page_p50_ms']} / {g['page_p99_ms']} |")  # fmt: skip
    lines += ["", "| target | must reach | goal | measured | |", "|---|---|---|---|---|"]
    for label, key, op, must, goal in TARGETS:
        value = r["ratios"].get(key)
        ok = value is not None and (value >= must if op == ">=" else value <= must)
        lines.append(
            f"| {label} | {op} {must} | {op} {goal} | {value} | {'met' if ok else 'NOT met'} |"
        )
    lines += ["", f"Invariants after the run: {r['invariants']}.", ""]
    return "\n".join(lines)


def chart(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = WORKLOADS
    limits = [r["limit"].get(w if w != "mix" else "uniform", {}).get("tps", 0) for w in names]
    https = [r["http"][w]["rps"] for w in names]
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], limits, width=0.4, label="limit: pgbench, same SQL function")
    left.bar([x + 0.2 for x in xs], https, width=0.4, label="service over HTTP")
    left.set_xticks(list(xs), names)
    left.set_ylabel("trades per second")
    left.set_title("Throughput (durable commits)")
    left.legend(fontsize=8)
    lat = r["latency_at_half_load"]
    right.bar(["p50", "p95", "p99"], [lat["p50_ms"], lat["p95_ms"], lat["p99_ms"]])
    right.set_ylabel("milliseconds")
    right.set_title(f"Latency, open loop at {lat['rate']}/s (50% of max)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    asyncio.run(main())
