"""What the audit log costs the trade write path.

Runs the service's own write path (one mc_create_trade call per trade, durable commits) against
a scratch database seeded with history and ANALYZEd, at several concurrencies, twice in the same
run: with the audit trigger on trades, and with it disabled. Also times the sealer's catch-up
over what the run appended. These machines are noisy: read the ratios, not the absolute figures.

    python bench/audit_cost.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
                               [--seconds 10] [--accounts 1000] [--history 100000]

Without --url it starts an embedded PostgreSQL in a temporary directory.
"""

import argparse
import asyncio
import hashlib
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from mutualcredit import embedded, migrate

CREATE = (
    "SELECT outcome FROM mc_create_trade($1, $2, $3, $4, $5, $6, false, NULL, '', NULL, '{}',"
    " 'bench')"
)


async def seed(url: str, accounts: int, history: int) -> uuid.UUID:
    conn = await asyncpg.connect(url)
    network = uuid.uuid4()
    await conn.execute(
        "INSERT INTO networks (id, code, name, unit_name, unit_symbol, scale, default_credit_limit)"
        " VALUES ($1, 'bench', 'bench', 'u', 'u', 0, 0)",
        network,
    )
    await conn.executemany(
        "INSERT INTO accounts (network_id, code, kind, credit_limit) VALUES ($1, $2, 'member', $3)",
        [(network, f"a{i}", 10**12) for i in range(accounts)],
    )
    digest = hashlib.sha256(b"seed").digest()
    rng = random.Random(1)
    statement = await conn.prepare(CREATE)
    for start in range(0, history, 1000):
        async with conn.transaction():
            for _ in range(min(1000, history - start)):
                p, q = rng.sample(range(accounts), 2)
                await statement.fetchval(network, uuid.uuid4().hex, digest, f"a{p}", f"a{q}", 1)
    await conn.execute("SELECT mc_audit_seal(1000000)")
    await conn.execute("ANALYZE")
    await conn.close()
    return network


async def load(url: str, network: uuid.UUID, accounts: int, workers: int, seconds: float) -> float:
    digest = hashlib.sha256(b"load").digest()
    deadline = time.perf_counter() + seconds
    counts = [0] * workers

    async def worker(n: int) -> None:
        conn = await asyncpg.connect(url)
        statement = await conn.prepare(CREATE)
        rng = random.Random(n)
        while time.perf_counter() < deadline:
            p, q = rng.sample(range(accounts), 2)
            async with conn.transaction():
                await statement.fetchval(network, uuid.uuid4().hex, digest, f"a{p}", f"a{q}", 1)
            counts[n] += 1
        await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    return sum(counts) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--url", help="a server URL; a scratch database is created on it")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--workers", default="1,4,8")
    args = parser.parse_args()

    if args.url:
        server_url = args.url
    else:
        _, server_url = embedded.start(Path(tempfile.mkdtemp(prefix="mc-bench-")), cleanup="delete")
    name = f"mc_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = embedded.database_url(server_url, name)
    try:
        await migrate.upgrade(url)
        network = await seed(url, args.accounts, args.history)
        conn = await asyncpg.connect(url)
        results = []
        for workers in [int(w) for w in args.workers.split(",")]:
            row = {"workers": workers}
            for audit in (True, False):
                await conn.execute(
                    f"ALTER TABLE trades {'ENABLE' if audit else 'DISABLE'} TRIGGER trades_audit"
                )
                row["with_audit" if audit else "without_audit"] = round(
                    await load(url, network, args.accounts, workers, args.seconds)
                )
            row["ratio"] = round(row["with_audit"] / row["without_audit"], 3)
            results.append(row)
            print(json.dumps(row), flush=True)
        await conn.execute("ALTER TABLE trades ENABLE TRIGGER trades_audit")
        unsealed = await conn.fetchval("SELECT count(*) FROM audit_log WHERE hash IS NULL")
        started = time.perf_counter()
        sealed = await conn.fetchval("SELECT mc_audit_seal(10000000)")
        elapsed = time.perf_counter() - started
        print(json.dumps({"unsealed_after_run": unsealed, "sealed": sealed,
                          "seal_records_per_s": round(sealed / elapsed)}))  # fmt: skip
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
