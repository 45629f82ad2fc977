"""What a levy costs the write path: trades/s with a levy rule in force against none.

    pip install -e '.[bench]' && python bench/fees.py          # embedded PostgreSQL
    python bench/fees.py --url postgresql://postgres@127.0.0.1:5432/postgres

One run, on a scratch database seeded by the suite's own seeding (bench/run.py), against one
`mutualcredit serve` (`--workers`, 1): `--rounds` pairs of wrk rounds of the suite's own trades
(bench/wrk/trades.lua, `--workload`, uniform by default), alternating no rule and a levy of 2 %
plus 0.01 on both sides into one treasury (the suite's trades are of 0.01, so each pays 0.01 a
side: every levied trade books three trades) (none, levy, none, levy, ...), so that the shared machine's
drift falls on both alike. Each levy round has a rule of its own, made just before it and ended
just after it (with SQL, with a reason, as an operator's PATCH does). Every levied trade locks
the treasury: it is the hottest account of the network, and what this measures is mostly how
well the booker's batches (one lock of an account per batch) absorb that.

After the rounds: the treasury's balance equals the sum of its charges, every levied trade has
its two charges, and the ledger's own checks (`mutualcredit check`'s) pass.

Writes results/fees.json (`--out`), with the command and the machine. Read the ratio within one
run, never absolute figures across runs.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import asyncpg
from run import (
    Service,
    admin,
    describe,
    log,
    operator_key,
    seed_accounts,
    seed_history,
    settle,
    wrk,
)

from mutualcredit import embedded, migrate
from mutualcredit.db import create_engine
from mutualcredit.ledger_checks import run_checks


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT set_config('mutualcredit.reason', 'benchmark', false)")
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def prepare(url: str, members: int, history: int) -> str:
    await migrate.upgrade(url)
    network = await seed_accounts(url, members)
    await seed_history(url, network, members, history)
    await _execute(
        url,
        "INSERT INTO accounts (network_id, code, kind, credit_limit)"
        " SELECT id, 'treasury', 'system', 0 FROM networks WHERE code = 'bench'",
    )
    return await operator_key(url, network)


def start_levy(url: str, code: str) -> None:
    asyncio.run(
        _execute(
            url,
            "INSERT INTO fee_rules (network_id, code, kind, treasury_id, charge_payer,"
            " charge_payee, rate_num, rate_den, amount, over_limit, starts_at, created_by)"
            f" SELECT network_id, '{code}', 'levy', id, true, true, 1, 50, 1, 'book',"
            " clock_timestamp(), 'bench' FROM accounts WHERE code = 'treasury'",
        )
    )


def end_levy(url: str, code: str) -> None:
    asyncio.run(
        _execute(url, f"UPDATE fee_rules SET ends_at = clock_timestamp() WHERE code = '{code}'")
    )


async def verify(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        treasury, charged, levied, charges = await conn.fetchrow(
            "SELECT (SELECT balance FROM accounts WHERE code = 'treasury'),"
            " (SELECT coalesce(sum(amount), 0) FROM fee_charges),"
            " (SELECT count(DISTINCT cause_trade_id) FROM fee_charges),"
            " (SELECT count(*) FROM fee_charges)"
        )
    finally:
        await conn.close()
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as c:
            report = await run_checks(c)
    finally:
        await engine.dispose()
    return {
        "treasury_balance": int(treasury),
        "sum_of_charges": int(charged),
        "levied_trades": levied,
        "charges": charges,
        "every_levied_trade_has_two_charges": charges == 2 * levied,
        "treasury_equals_charges": treasury == charged,
        "ledger_checks": "ok" if report.ok else report.failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="what a levy costs the write path")
    parser.add_argument("--url", help="a PostgreSQL server; a scratch database is made on it")
    parser.add_argument("--seconds", type=float, default=10, help="each round")
    parser.add_argument("--rounds", type=int, default=5, help="pairs of rounds (none, levy)")
    parser.add_argument("--workload", default="uniform", help="of bench/wrk/trades.lua")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    server = None
    if args.url:
        server_url = args.url
    else:
        server, server_url = embedded.start(
            Path(tempfile.mkdtemp(prefix="mc-bench-fees-")), cleanup="delete"
        )
    name = f"mc_bench_fees_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = describe("bench/fees.py", {**vars(args), "out": str(args.out)})
    service = None
    try:
        asyncio.run(admin(server_url, f'CREATE DATABASE "{name}"'))
        url = embedded.database_url(server_url, name)
        log(f"seeding {args.members} members and {args.history} trades")
        token = asyncio.run(prepare(url, args.members, args.history))
        service = Service(url, args.workers)
        service.wait_ready()
        wrk(service, token, args.workload, 3, args.members)  # warm up

        log(f"{args.rounds} pairs of rounds, no rule and a levy alternating")
        rps: dict[str, list[int]] = {"none": [], "levy": []}
        rounds = []
        for i in range(args.rounds):
            for mode in ("none", "levy"):
                asyncio.run(settle(url))
                if mode == "levy":
                    start_levy(url, f"levy-{i}")
                run = wrk(service, token, args.workload, args.seconds, args.members)
                if mode == "levy":
                    end_levy(url, f"levy-{i}")
                rps[mode].append(run["rps"])
                rounds.append({"mode": mode, **run})
                log(f"  {mode}: {run['rps']} trades/s ({run['non_2xx']} not 2xx)")
        none, levy = statistics.median(rps["none"]), statistics.median(rps["levy"])
        results["throughput"] = {
            "workload": args.workload,
            "rounds": rounds,
            "none_median_rps": none,
            "levy_median_rps": levy,
            "ratio": round(levy / none, 3),
        }
        results["verified"] = asyncio.run(verify(url))
        log(json.dumps(results["verified"]))
    finally:
        if service is not None:
            service.stop()
        asyncio.run(admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fees.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results.get(k) for k in ("throughput", "verified")}, indent=2))


if __name__ == "__main__":
    main()
