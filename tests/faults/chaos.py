"""The fault-injection workload (Jepsen's "bank", for a mutual credit ledger).

Many tills post trades concurrently against a real service process and a dedicated embedded
PostgreSQL, retrying timeouts and errors with the same Idempotency-Key as a co-op's till would,
while faults are injected: kill -9 of the service (then a restart), PostgreSQL restarts (fast and
immediate shutdown), pg_terminate_backend of the service's connections, and SIGSTOP/SIGCONT of
the service so clients time out. Then every till retries what it was left unsure of, once the
faults stop, and the ledger is checked:

    lost              acknowledged to a till but not booked                 must be 0
    duplicated        one key booked more than once                         must be 0
    refused_but_booked  a till was told "refused" and the trade exists      must be 0
    booked_unacknowledged  booked while the till did not know (its final retry learned it)
    server_errors     500 answers: a fault must read as 503 or a timeout      must be 0
    plus: network sums zero, balances equal their entries, no account beyond a limit without a
    recorded cause, holds equal pending trades, the audit chain verifies.

Bounded in time and loopback only. Short in CI (tests/faults/test_chaos.py), long on demand:

    python -m tests.faults.chaos --seconds 600 --fault-every 4 --report chaos-report.json
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from mutualcredit import embedded, jobs, migrate
from mutualcredit.audit import service as audit
from mutualcredit.db import create_engine, make_sessionmaker
from mutualcredit.ledger_checks import run_checks
from tests.processes import signal_tree, tree

NETWORK = "chaos"
ACCOUNTS = [f"m{n:02d}" for n in range(24)]
BUSY = ["shop", "treasury", "market"]
REFUSALS = {
    "credit_limit_exceeded",
    "balance_max_exceeded",
    "account_suspended",
    "account_closed",
    "account_not_found",
}


@dataclass
class Attempt:
    key: str
    payer: str
    payee: str
    amount: int
    pending: bool = False  # a hold, posted or voided later (the webhook fault run makes some)
    outcome: str = "unknown"  # acknowledged | refused | unknown
    trade_id: str | None = None
    code: str | None = None
    tries: int = 0
    # Acknowledged by a replay: an earlier delivery was booked but its answer was lost.
    replayed: bool = False
    server_errors: int = 0  # 500s: a fault must read as 503 (retry) or a timeout, never a bug


@dataclass
class Report:
    seconds: float = 0
    faults: Counter[str] = field(default_factory=Counter)
    attempts: list[Attempt] = field(default_factory=list)
    unsure_at_end: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """A dedicated PostgreSQL and one service process: both ours to break."""

    def __init__(self, workdir: Path, settings: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        # The service's own settings (MUTUALCREDIT_*), over the defaults of start_service.
        self.settings = settings or {}
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: Any = None
        self.server_url = ""
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(workdir / "service.log", "ab")  # noqa: SIM115 - lives as long as the run

    async def start_database(self) -> None:
        self.server, self.server_url = embedded.start(self.workdir, cleanup="delete")
        self.url = await embedded.ensure_database(self.server_url, "chaos")
        await migrate.upgrade(self.url)

    def start_service(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
        env.update(
            MUTUALCREDIT_DATABASE_URL=self.url,
            MUTUALCREDIT_SWEEP_INTERVAL_SECONDS="0.5",
            MUTUALCREDIT_RATE_LIMIT_PER_SECOND="0",
            MUTUALCREDIT_LOG_LEVEL="warning",
            MUTUALCREDIT_POOL_SIZE="20",
        )
        env.update(self.settings)
        self.proc = subprocess.Popen(  # noqa: S603 - our own command
            [
                sys.executable,
                "-m",
                "mutualcredit.cli",
                "serve",
                "--no-migrate",
                "--no-demo",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.base}/readyz", timeout=2)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("the service did not become ready")

    def kill_service(self) -> None:
        """kill -9 of the service and the processes it started (its webhook delivery)."""
        assert self.proc is not None
        signal_tree(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.start_service()

    async def pause_service(self, seconds: float) -> None:
        """The service and the processes it started stopped (SIGSTOP), then continued."""
        assert self.proc is not None
        stopped = tree(self.proc.pid)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    async def restart_database(self, mode: str) -> None:
        await restart_postgres(self.workdir / "pgdata", self.server.system_user, mode)

    async def terminate_backends(self) -> None:
        await terminate_backends(self.url)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.server is not None:
            self.server.cleanup()


async def restart_postgres(pgdata: Path, system_user: str, mode: str) -> None:
    """Restarts a pgserver-managed PostgreSQL (`mode`: fast or immediate shutdown)."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    await asyncio.to_thread(
        pg_ctl,
        ["-w", "-m", mode, "-l", str(pgdata / "log"), "restart"],
        pgdata=pgdata,
        user=system_user,
        timeout=60,
    )


async def terminate_backends(url: str) -> None:
    """Terminates every other connection to the database of `url`."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


def run_in_thread(workload: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """Runs a workload's event loop in a thread of its own (a test session's loop lives in
    the calling thread) and returns its figures."""
    result: dict[str, Any] = {}

    def target() -> None:
        result.update(asyncio.run(workload()))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert result, "the workload did not finish"
    return result


async def bootstrap(cluster: Cluster) -> str:
    """The chaos network: members with modest limits (so some trades are refused), busy
    accounts with large ones, and an operator key for the tills."""
    from mutualcredit.auth import service as keys
    from mutualcredit.auth.models import Role

    engine = create_engine(cluster.url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await session.execute(
                text(
                    "INSERT INTO networks (code, name, unit_name, unit_symbol, scale,"
                    " default_credit_limit) VALUES (:code, 'Chaos', 'hour', 'h', 2, 1000)"
                ),
                {"code": NETWORK},
            )
            network_id = (
                await session.execute(
                    text("SELECT id FROM networks WHERE code = :c"), {"c": NETWORK}
                )
            ).scalar_one()
            rng = random.Random(42)
            for code in ACCOUNTS:
                await session.execute(
                    text(
                        "INSERT INTO accounts (network_id, code, kind, credit_limit, balance_max)"
                        " VALUES (:n, :code, 'member', :limit, :max)"
                    ),
                    {
                        "n": network_id,
                        "code": code,
                        "limit": rng.choice([300, 600, 1000]),
                        "max": rng.choice([None, 3000]),
                    },
                )
            for code in BUSY:
                await session.execute(
                    text(
                        "INSERT INTO accounts (network_id, code, kind, credit_limit)"
                        " VALUES (:n, :code, 'member', 1000000)"
                    ),
                    {"n": network_id, "code": code},
                )
            _, token = await keys.create_key(session, role=Role.operator, network_id=network_id)
            return token
    finally:
        await engine.dispose()


async def till(
    n: int, cluster: Cluster, token: str, report: Report, stop: asyncio.Event, patience: float
) -> None:
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{cluster.base}/v1/networks/{NETWORK}/trades"
    async with httpx.AsyncClient(timeout=patience) as client:
        while not stop.is_set():
            if rng.random() < 0.5:
                payer, payee = rng.choice(ACCOUNTS), rng.choice(BUSY)  # a busy account in it
                if rng.random() < 0.5:
                    payer, payee = payee, payer
            else:
                payer, payee = rng.sample(ACCOUNTS, 2)
            attempt = Attempt(uuid.uuid4().hex, payer, payee, rng.randint(1, 400))
            report.attempts.append(attempt)
            await deliver(client, url, headers, attempt, stop)


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    attempt: Attempt,
    stop: asyncio.Event | None,
) -> None:
    """Posts until there is an answer, with the same key every time, as a till would."""
    body: dict[str, Any] = {
        "payer": attempt.payer,
        "payee": attempt.payee,
        "amount": attempt.amount,
    }
    if attempt.pending:
        body["pending"] = True
    backoff = 0.05
    while stop is None or not stop.is_set():
        attempt.tries += 1
        try:
            r = await client.post(
                url, json=body, headers={**headers, "Idempotency-Key": attempt.key}
            )
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 201:
            attempt.outcome, attempt.trade_id = "acknowledged", r.json()["id"]
            attempt.replayed = r.headers.get("Idempotent-Replayed") == "true"
            return
        if r is not None and r.status_code in (404, 409):
            code = r.json().get("code")
            if code in REFUSALS:
                attempt.outcome, attempt.code = "refused", code
                return
            raise AssertionError(f"unexpected refusal {r.status_code} {r.text}")
        if r is not None and r.status_code == 500:
            attempt.server_errors += 1  # counted (must stay 0), and retried as a till would
        elif r is not None and r.status_code not in (429, 502, 503):
            raise AssertionError(f"unexpected answer {r.status_code} {r.text}")
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 1.0)
        if stop is None and attempt.tries > 200:
            raise AssertionError(f"no answer for {attempt.key} after the faults stopped")


async def inject(cluster: Cluster, report: Report, stop: asyncio.Event, every: float) -> None:
    rng = random.Random(7)
    faults = ["kill_service", "restart_db_fast", "restart_db_immediate", "terminate_backends",
              "pause_service"]  # fmt: skip
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
            return
        except TimeoutError:
            pass
        fault = rng.choice(faults)
        if fault == "kill_service":
            cluster.kill_service()
        else:
            await inject_database_or_pause(cluster, fault, rng)
        report.faults[fault] += 1


async def inject_database_or_pause(cluster: Cluster, fault: str, rng: random.Random) -> None:
    """One fault of the database or the service that is not a kill: a PostgreSQL restart
    (`restart_db_fast`, `restart_db_immediate`), `terminate_backends`, or else a pause."""
    if fault == "restart_db_fast":
        await cluster.restart_database("fast")
    elif fault == "restart_db_immediate":
        await cluster.restart_database("immediate")
    elif fault == "terminate_backends":
        await cluster.terminate_backends()
    else:
        await cluster.pause_service(rng.uniform(1.0, 3.0))


async def check(cluster: Cluster, report: Report) -> dict[str, Any]:
    conn = await asyncpg.connect(cluster.url)
    try:
        rows = await conn.fetch(
            "SELECT t.key, t.id::text AS id FROM trades t JOIN networks n ON n.id = t.network_id"
            " WHERE n.code = $1",
            NETWORK,
        )
        sums = await conn.fetchrow(
            "SELECT sum(balance) AS balances, sum(pending_debits) AS debits,"
            " sum(pending_credits) AS credits FROM accounts"
        )
    finally:
        await conn.close()
    booked: dict[str, list[str]] = {}
    for row in rows:
        booked.setdefault(row["key"], []).append(row["id"])
    attempts = report.attempts
    acknowledged = [a for a in attempts if a.outcome == "acknowledged"]
    engine = create_engine(cluster.url, pool_size=1)
    try:
        async with engine.connect() as c:
            ledger = await run_checks(c)
        sessionmaker = make_sessionmaker(engine)
        await jobs.seal_audit(sessionmaker)
        async with sessionmaker() as session:
            network_id = (
                await session.execute(
                    text("SELECT id FROM networks WHERE code = :c"), {"c": NETWORK}
                )
            ).scalar_one()
            chain = await audit.verify(session, network_id, NETWORK)
    finally:
        await engine.dispose()
    return {
        "seconds": round(report.seconds),
        "faults_injected": sum(report.faults.values()),
        "faults": dict(report.faults),
        "attempted": len(attempts),
        "acknowledged": len(acknowledged),
        "refused": sum(1 for a in attempts if a.outcome == "refused"),
        "booked": len(rows),
        "lost": sum(1 for a in acknowledged if booked.get(a.key) != [a.trade_id]),
        "duplicated": sum(len(ids) - 1 for ids in booked.values() if len(ids) > 1),
        "refused_but_booked": sum(
            1 for a in attempts if a.outcome == "refused" and a.key in booked
        ),
        # Booked, but the answer never reached the till: its retry learned it (a replay).
        "booked_unacknowledged_then_recovered": sum(1 for a in acknowledged if a.replayed),
        "unsure_when_faults_stopped": report.unsure_at_end,
        "unanswered": sum(1 for a in attempts if a.outcome == "unknown"),
        "server_errors": sum(a.server_errors for a in attempts),
        "retries": sum(a.tries - 1 for a in attempts),
        "booked_without_attempt": len(set(booked) - {a.key for a in attempts}),
        "network_sum": int(sums["balances"] or 0),
        "pending_debits_equal_credits": sums["debits"] == sums["credits"],
        "ledger_checks": "ok" if ledger.ok else ledger.failures,
        "audit_chain": "ok" if chain.ok else str(chain.first_broken),
        "audit_records": chain.sealed,
    }


async def run(seconds: float, fault_every: float, tills: int, patience: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mc-chaos-"))
    cluster = Cluster(workdir)
    report = Report()
    try:
        await cluster.start_database()
        token = await bootstrap(cluster)
        cluster.start_service()
        await cluster.wait_ready()
        stop = asyncio.Event()
        started = time.monotonic()
        workers = [asyncio.create_task(till(n, cluster, token, report, stop, patience))
                   for n in range(tills)]  # fmt: skip
        injector = asyncio.create_task(inject(cluster, report, stop, fault_every))
        await asyncio.sleep(seconds)
        stop.set()
        await injector
        await asyncio.gather(*workers)
        report.seconds = time.monotonic() - started

        # The faults have stopped: bring the service back whole, then let every till retry
        # what it was left unsure of, with the same key, until it has an answer.
        if cluster.proc is None or cluster.proc.poll() is not None:
            cluster.start_service()
        await cluster.wait_ready()
        unsure = [a for a in report.attempts if a.outcome == "unknown"]
        report.unsure_at_end = len(unsure)
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{cluster.base}/v1/networks/{NETWORK}/trades"
        async with httpx.AsyncClient(timeout=10) as client:
            for attempt in unsure:
                await deliver(client, url, headers, attempt, None)
        return await check(cluster, report)
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="mutualcredit fault-injection workload")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--fault-every", type=float, default=3)
    parser.add_argument("--tills", type=int, default=16)
    parser.add_argument("--patience", type=float, default=2.0, help="a till's request timeout")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    figures = asyncio.run(run(args.seconds, args.fault_every, args.tills, args.patience))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")


if __name__ == "__main__":
    main()
