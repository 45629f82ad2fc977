"""The federation fault run: many trades across three networks while processes and databases fail.

Four deployments, each a `mutualcredit serve` process with a PostgreSQL server of its own (so a
fault can restart one database and not the others):

    alpha --(3/2)-- hub --(1/1)-- bravo        alpha and bravo reach each other through the hub
                     |
                   (1/1)-- delta               a peer that goes away for good during the run

Tills at every network post trades through the member API: local ones, to the neighbour over a
direct link, and across the hub (two hops). Each retries with the same Idempotency-Key until it
has a final answer (201 booked, or 409 refused), as a co-op's till would; a 202 (still in flight)
is not final. Meanwhile, faults at random:

    kill           kill -9 of one node's service, restarted at once
    kill_long      kill -9 of one node, kept down past the transfer expiry, then restarted
    pause          SIGSTOP of one node for 1-3 s (its callers time out; answers are lost)
    restart_db     one node's PostgreSQL restarted (fast or immediate shutdown)
    terminate      pg_terminate_backend of one node's connections
    gone           once, halfway: kill -9 of delta, never restarted

A till whose trade has waited in flight (202) for half an expiry moves on, as a co-op's till
would, and asks about it once more at the end.

Meanwhile each network's operator tries to reverse trades its tills were told were booked: a
cross-network trade must always be refused (`trade_federated`: it is corrected across, never on
one side), a local one is reversed or refused by a limit, and never twice. And alpha's and the
hub's operators settle their link, at random moments, whichever way it owes: the owing side
records, the owed side executes; each settlement ends executed on both sides or on neither.

When the faults stop, every node but delta is brought back; once the expiry of every transfer
the hub sent to delta has passed, the hub's operator resolves each (void, with a reason), and
the networks before it learn the outcome by the protocol. Then every till asks again about
what it was left unsure of, and the outboxes drain. Then, from the databases:

    lost                acknowledged (201) but not booked exactly once at origin, hub and
                        destination                                               must be 0
    duplicated          booked more than once anywhere (one key, or one transfer) must be 0
    refused_but_booked  told "refused", yet booked somewhere                      must be 0
    half_booked         booked at one end and not at the other (value created or lost) must be 0
    unanswered          no final answer after the faults stopped                   must be 0
    resolved_but_booked_by_gone_peer
                        voided by the hub's operator, yet booked by delta before it went: the
                        disagreement a returning peer would make `disputed`; counted, never
                        hidden in the other figures
    settlements_one_sided   executed on one side of the link only                 must be 0

and `settled()` checks every network's zero sum, the link mirrors, reconcile on every link and
that no hold outlived its expiry; then both sides of every link sign a checkpoint. Short in CI
(test_chaos.py), long on demand:

    python -m tests.federation.chaos --seconds 300 --fault-every 5 --report fed-chaos.json
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from mutualcredit import embedded
from tests.faults.chaos import restart_postgres, terminate_backends
from tests.federation.checks import settled
from tests.federation.cluster import Cluster, Node

TTL_SECONDS = 10
MEMBERS = {"alpha": 6, "hub": 4, "bravo": 6, "delta": 3}
GONE = "delta"  # the peer that goes away for good; it has no till of its own
# Where a node's members pay: their own network, a neighbour, or across the hub.
PAYEES = {"alpha": ["alpha", "hub", "bravo", "delta"], "hub": ["hub", "alpha", "bravo", "delta"],
          "bravo": ["bravo", "hub", "alpha", "delta"]}  # fmt: skip
# The gone peer is paid half as often as the others.
WEIGHT = {GONE: 0.5}
# A till moves on from a trade in flight this long, and asks about it again at the end.
PATIENCE_IN_FLIGHT = TTL_SECONDS / 2
FINAL_REFUSALS = {
    "transfer_refused",
    "credit_limit_exceeded",
    "balance_max_exceeded",
}


@dataclass
class Attempt:
    origin: str
    destination: str
    key: str
    payer: str
    payee: str
    amount: int
    outcome: str = "unknown"  # acknowledged | refused | unknown
    code: str | None = None
    remote_code: str | None = None
    trade_id: str | None = None
    tries: int = 0
    saw_in_flight: bool = False
    server_errors: int = 0  # 500s: a fault must read as 503 (retry) or a timeout, never a bug

    @property
    def remote(self) -> bool:
        return self.origin != self.destination

    @property
    def routed(self) -> bool:
        """Through the hub: between two networks that are not the hub."""
        return self.remote and "hub" not in (self.origin, self.destination)


@dataclass
class Report:
    seconds: float = 0
    faults: Counter[str] = field(default_factory=Counter)
    attempts: list[Attempt] = field(default_factory=list)
    unsure_at_end: int = 0
    # What the operators' reversals were answered: "<local|federated>:<status or code>".
    reversals: Counter[str] = field(default_factory=Counter)
    settlements: list["Settling"] = field(default_factory=list)
    gone_at: float | None = None
    resolved: list[str] = field(default_factory=list)  # transfer ids the hub's operator voided
    # How the hub's transfers to the gone peer stood when the faults stopped, by status and code.
    toward_gone: dict[str, int] = field(default_factory=dict)


@dataclass
class Settling:
    """One settlement of the alpha-hub link: the owing side records, the owed side executes."""

    reference: str
    owing: str
    executing: str
    answers: list[str] = field(default_factory=list)


# What an operator's reversal may be answered while the faults run, besides 201: a limit of
# one of the two members, the trade's own reversal found again (a retry after a lost answer),
# and for a cross-network trade only trade_federated.
REVERSAL_REFUSALS = {"credit_limit_exceeded", "balance_max_exceeded", "trade_already_reversed"}


class Federation:
    """Three nodes, each with a dedicated embedded PostgreSQL that the run may restart."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: dict[str, Any] = {}
        self.cluster: Cluster | None = None

    def start(self) -> Cluster:
        urls = {}
        for name in MEMBERS:
            server, url = embedded.start(self.workdir / name, cleanup="delete")
            self.servers[name] = server
            urls[name] = url
        cluster = Cluster(
            urls["hub"],
            self.workdir,
            MUTUALCREDIT_FEDERATION_TTL_SECONDS=str(TTL_SECONDS),
            MUTUALCREDIT_FEDERATION_HOP_MARGIN_SECONDS="3",
            MUTUALCREDIT_FEDERATION_TIMEOUT_SECONDS="2",
            MUTUALCREDIT_FEDERATION_RETRY_MAX_SECONDS="1",
        )
        self.cluster = cluster
        for name in MEMBERS:
            cluster.add(name, default_credit_limit=5_000, server_url=urls[name])
        alpha, hub, bravo = (cluster.nodes[n] for n in ("alpha", "hub", "bravo"))
        cluster.connect(alpha, hub, num=3, den=2, caps=40_000, a_default_route=True)
        cluster.connect(bravo, hub, num=1, den=1, caps=40_000, a_default_route=True)
        # delta has no till: value only flows to it, so its link gets caps that do not fill up
        # before it goes, and transfers are still in flight toward it when it does.
        cluster.connect(
            cluster.nodes[GONE], hub, num=1, den=1, caps=10_000_000, a_default_route=True
        )
        for name, count in MEMBERS.items():
            for n in range(count):
                cluster.nodes[name].member(f"{name[0]}{n:02d}")
        return cluster

    async def restart_database(self, name: str, mode: str) -> None:
        pgdata = self.workdir / name / "pgdata"
        await restart_postgres(pgdata, self.servers[name].system_user, mode)

    def stop(self) -> None:
        if self.cluster is not None:
            for node in self.cluster.nodes.values():
                if node.proc is not None and node.proc.poll() is None:
                    node.proc.send_signal(signal.SIGCONT)
                node.stop()
        for server in self.servers.values():
            server.cleanup()


async def till(
    n: int, cluster: Cluster, origin: str, report: Report, stop: asyncio.Event, patience: float
) -> None:
    rng = random.Random(n)
    node = cluster.nodes[origin]
    mine = sorted(node.members)
    async with httpx.AsyncClient(timeout=patience) as client:
        while not stop.is_set():
            choices = PAYEES[origin]
            destination = rng.choices(choices, [WEIGHT.get(c, 1.0) for c in choices])[0]
            payer = rng.choice(mine)
            if destination == origin:
                payee = rng.choice([m for m in mine if m != payer])
            else:
                others = sorted(cluster.nodes[destination].members)
                payee = f"{destination}/{rng.choice(others)}"
            attempt = Attempt(
                origin, destination, uuid.uuid4().hex, payer, payee, rng.randint(2, 300)
            )
            report.attempts.append(attempt)
            await deliver(client, node, attempt, stop, PATIENCE_IN_FLIGHT)


async def deliver(
    client: httpx.AsyncClient,
    node: Node,
    attempt: Attempt,
    stop: asyncio.Event | None,
    patience: float | None = None,
) -> None:
    """Posts with the same key until the answer is final; a 202 (in flight) means ask again,
    for `patience` seconds at most (then it is asked again at the end)."""
    body = {"payer": attempt.payer, "payee": attempt.payee, "amount": attempt.amount}
    headers = {
        "Authorization": f"Bearer {node.members[attempt.payer]}",
        "Idempotency-Key": attempt.key,
    }
    backoff = 0.1
    started = time.monotonic()
    deadline = started + 4 * TTL_SECONDS + 60
    while stop is None or not stop.is_set():
        attempt.tries += 1
        try:
            r: httpx.Response | None = await client.post(
                f"{node.base}/trades", json=body, headers=headers
            )
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 201:
            attempt.outcome, attempt.trade_id = "acknowledged", r.json()["id"]
            return
        if r is not None and r.status_code == 202:
            attempt.saw_in_flight = True
            attempt.trade_id = r.json()["id"]
        elif r is not None and r.status_code == 409:
            problem = r.json()
            if problem.get("code") not in FINAL_REFUSALS:
                raise AssertionError(f"unexpected refusal {r.text}")
            attempt.outcome, attempt.code = "refused", problem["code"]
            attempt.remote_code = problem.get("remote_code")
            return
        elif r is not None and r.status_code == 500:
            attempt.server_errors += 1
        elif r is not None and r.status_code not in (429, 502, 503):
            raise AssertionError(f"unexpected answer {r.status_code} {r.text}")
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 1.0)
        if stop is None and time.monotonic() > deadline:
            return  # counted as unanswered
        if patience is not None and time.monotonic() - started > patience:
            return  # in flight for long: asked again at the end


async def reverse(
    cluster: Cluster, report: Report, stop: asyncio.Event, every: float, patience: float
) -> None:
    """An operator at a random network reverses a random trade its tills were told was booked,
    as someone correcting a mistake would, faults or not; a timeout or a 5xx is asked again."""
    rng = random.Random(7)
    async with httpx.AsyncClient(timeout=patience) as client:
        while not stop.is_set():
            if await _stopped(stop, every):
                return
            done = [a for a in report.attempts if a.outcome == "acknowledged" and a.trade_id]
            if not done:
                continue
            attempt = rng.choice(done)
            node = cluster.nodes[attempt.origin]
            kind = "federated" if attempt.remote else "local"
            r = await _ask(
                client,
                "POST",
                node,
                f"/trades/{attempt.trade_id}/reverse",
                {"reason": "chaos: a till's mistake"},
                f"reverse-{attempt.trade_id}",
            )
            if r is not None:
                code = str(r.status_code) if r.status_code == 201 else r.json().get("code")
                report.reversals[f"{kind}:{code}"] += 1


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Waits `seconds`, or less if `stop` is set first: whether it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def inject(
    fed: Federation,
    cluster: Cluster,
    report: Report,
    stop: asyncio.Event,
    every: float,
    gone_after: float,
) -> None:
    rng = random.Random(11)
    kinds = ["kill", "kill_long", "pause", "restart_db_fast", "restart_db_immediate", "terminate"]
    plan: list[str] = []
    started = time.monotonic()
    while not stop.is_set():
        if await _stopped(stop, every):
            return
        if report.gone_at is None and time.monotonic() - started >= gone_after:
            cluster.nodes[GONE].kill()  # for good: never started again
            report.gone_at = time.monotonic() - started
            report.faults[f"gone:{GONE}"] += 1
            continue
        if not plan:  # every kind once per round, in a random order
            plan = rng.sample(kinds, len(kinds))
        kind = plan.pop()
        name = rng.choice(sorted(n for n in cluster.nodes if n != GONE))
        node = cluster.nodes[name]
        if kind in ("kill", "kill_long"):
            node.kill()
            if kind == "kill_long":
                await asyncio.sleep(TTL_SECONDS + 2)
            await asyncio.to_thread(node.start)
        elif kind == "pause":
            assert node.proc is not None
            node.proc.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(rng.uniform(1.0, 3.0))
            finally:
                node.proc.send_signal(signal.SIGCONT)
        elif kind.startswith("restart_db"):
            await fed.restart_database(name, kind.rsplit("_", 1)[1])
        else:
            await terminate_backends(node.database_url)
        report.faults[f"{kind}:{name}"] += 1


async def settle(
    cluster: Cluster, report: Report, stop: asyncio.Event, every: float, patience: float
) -> None:
    """alpha's and the hub's operators settle part of their link, whichever way it owes, at
    random moments while the faults run. 2k of alpha are worth 3k of the hub (rate 3/2), so the
    two records always correspond. Each call is retried with its key until it is answered."""
    rng = random.Random(5)
    alpha, hub = cluster.nodes["alpha"], cluster.nodes["hub"]
    async with httpx.AsyncClient(timeout=patience) as client:
        n = 0
        while not stop.is_set():
            if await _stopped(stop, rng.uniform(every / 2, every)):
                return
            answer = await _ask(client, "GET", alpha, "/accounts/link.hub", None, None)
            if answer is None or answer.status_code != 200:
                continue
            owed_by_alpha = answer.json()["balance"]  # positive: alpha owes the hub
            k = min(abs(owed_by_alpha) // 20, 100)
            if k < 1:
                continue
            n += 1
            if owed_by_alpha > 0:
                sides = [(alpha, 2 * k), (hub, 3 * k)]
            else:
                sides = [(hub, 3 * k), (alpha, 2 * k)]
            settling = Settling(f"chaos-{n}", sides[0][0].name, sides[1][0].name)
            report.settlements.append(settling)
            for node, amount in sides:  # the owing side records first
                peer = "hub" if node is alpha else "alpha"
                r = await _ask(
                    client,
                    "POST",
                    node,
                    f"/federation/links/{peer}/settlements",
                    {"reference": settling.reference, "amount": amount},
                    f"{settling.reference}-{node.name}",
                )
                settling.answers.append(
                    "no answer" if r is None else f"{r.status_code} {r.json().get('code', '')}"
                )
                if r is None or r.status_code >= 400:
                    break


async def _ask(
    client: httpx.AsyncClient,
    method: str,
    node: Node,
    path: str,
    body: dict[str, Any] | None,
    key: str | None,
) -> httpx.Response | None:
    """An operator's call, asked again (with the same key) through timeouts and 5xx."""
    headers = {"Authorization": f"Bearer {node.operator}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    for _ in range(30):
        try:
            r = await client.request(method, f"{node.base}{path}", json=body, headers=headers)
        except httpx.HTTPError:
            await asyncio.sleep(0.5)
            continue
        if r.status_code in (429, 502, 503):
            await asyncio.sleep(0.5)
            continue
        return r
    return None


async def resolve_gone(cluster: Cluster, report: Report, *, wait: bool = True) -> None:
    """The hub's operator resolves what it sent to the peer that is gone, once each transfer's
    expiry has passed (void, with a reason): waiting for the last expiry, or (`wait` False) only
    those expired already. The networks before the hub learn it by the protocol."""
    hub = cluster.nodes["hub"]
    waiting = await hub.fetch(
        "SELECT t.transfer_id::text AS id, t.expires_at FROM transfers t"
        " JOIN links l ON l.id = t.link_id"
        " WHERE l.peer_code = $1 AND t.direction = 'out' AND t.status = 'prepared'"
        " AND ($2 OR t.expires_at < now())",
        GONE,
        wait,
    )
    if waiting and wait:
        last = max(r["expires_at"] for r in waiting)
        now = (await hub.fetch("SELECT now() AS now"))[0]["now"]
        await asyncio.sleep(max(0.0, (last - now).total_seconds()) + 0.5)
    async with httpx.AsyncClient(timeout=10) as client:
        for row in waiting:
            r = await _ask(
                client,
                "POST",
                hub,
                f"/federation/links/{GONE}/transfers/{row['id']}/resolve",
                {"outcome": "void", "reason": f"{GONE} is gone for good"},
                f"resolve-{row['id']}",
            )
            if r is None or r.status_code != 200:
                raise AssertionError(f"resolving {row['id']}: {r and r.text}")
            report.resolved.append(row["id"])


async def keep_resolving(cluster: Cluster, report: Report, done: asyncio.Event) -> None:
    """The hub's operator resolves each transfer to the gone peer as its expiry passes."""
    while not done.is_set():
        await resolve_gone(cluster, report, wait=False)
        await _stopped(done, 1.0)


async def resolve_all_gone(cluster: Cluster, report: Report) -> None:
    """Resolves until nothing is left on its way to the gone peer: a transfer another network
    sent to the hub while it was down may reach it only now, and be sent on toward the gone
    peer (or refused for its expiry)."""
    rows = await cluster.nodes["hub"].fetch(
        "SELECT t.status || coalesce(':' || t.refusal_code, '') AS s, count(*) AS n"
        " FROM transfers t JOIN links l ON l.id = t.link_id"
        " WHERE l.peer_code = $1 AND t.direction = 'out' GROUP BY 1",
        GONE,
    )
    if not report.toward_gone:  # as the faults stopped: the first pass only
        report.toward_gone = {r["s"]: int(r["n"]) for r in rows}
    deadline = time.monotonic() + 4 * TTL_SECONDS + 60
    while time.monotonic() < deadline:
        await resolve_gone(cluster, report)
        await asyncio.sleep(2)
        pending = 0
        for node in cluster.nodes.values():
            if node.name == GONE:
                continue
            rows = await node.fetch(
                "SELECT 1 FROM transfers t JOIN links l ON l.id = t.link_id"
                " WHERE t.status = 'prepared' AND (t.payee_address LIKE $1 OR l.peer_code = $2)",
                f"{GONE}/%",
                GONE,
            )
            pending += len(rows)
        if not pending:
            return
    raise AssertionError("transfers toward the gone peer were still in flight")


async def _settlement_outcomes(cluster: Cluster, report: Report) -> dict[str, Any]:
    """Each settlement as both sides ended it: executed on both, or on neither."""
    statuses: Counter[str] = Counter()
    one_sided = []
    async with httpx.AsyncClient(timeout=10) as client:
        views = {}
        for name, peer in (("alpha", "hub"), ("hub", "alpha")):
            node = cluster.nodes[name]
            r = await client.get(
                f"{node.base}/federation/links/{peer}/settlements",
                headers={"Authorization": f"Bearer {node.operator}"},
            )
            assert r.status_code == 200, r.text
            views[name] = {s["reference"]: s["status"] for s in r.json()}
    for s in report.settlements:
        pair = (views["alpha"].get(s.reference), views["hub"].get(s.reference))
        executed = [status == "executed" for status in pair]
        statuses[f"{s.executing} executing: {pair[0]}/{pair[1]}"] += 1
        if any(executed) and not all(executed):
            one_sided.append({"reference": s.reference, "statuses": pair, "answers": s.answers})
    return {
        "settlements": dict(sorted(statuses.items())),
        "settlements_executed": sum(
            1
            for s in report.settlements
            if views["alpha"].get(s.reference) == views["hub"].get(s.reference) == "executed"
        ),
        "settlements_one_sided": len(one_sided),
        "settlements_one_sided_detail": one_sided,
    }


async def _bookings(node: Node) -> tuple[dict[str, list[str]], dict[str, int], dict[str, str]]:
    """One node's database: posted trades by key, bookings per transfer id (the trades a
    transfer posted there) and the outbound transfer id of each origin trade."""
    conn = await asyncpg.connect(node.database_url)
    try:
        trades = await conn.fetch("SELECT key, status FROM trades WHERE kind <> 'settlement'")
        booked = await conn.fetch(
            "SELECT tr.transfer_id::text AS t, count(*) AS n FROM transfers tr"
            " JOIN trades t ON t.id = tr.trade_id"
            " WHERE tr.direction = 'in' AND t.status = 'posted' GROUP BY 1"
        )
        outbound = await conn.fetch(
            "SELECT t.key, tr.transfer_id::text AS transfer_id FROM transfers tr"
            " JOIN trades t ON t.id = tr.trade_id WHERE tr.direction = 'out'"
            " AND t.key NOT LIKE 'federation:%'"
        )
    finally:
        await conn.close()
    by_key: dict[str, list[str]] = {}
    for row in trades:
        by_key.setdefault(row["key"], []).append(row["status"])
    return (
        by_key,
        {r["t"]: int(r["n"]) for r in booked},
        {r["key"]: r["transfer_id"] for r in outbound},
    )


async def check(cluster: Cluster, report: Report) -> dict[str, Any]:
    books = {name: await _bookings(node) for name, node in cluster.nodes.items()}
    attempts = report.attempts
    lost = duplicated = refused_but_booked = half_booked = against_gone = 0
    resolved = set(report.resolved)
    booked_at: Counter[str] = Counter()
    for a in attempts:
        statuses = books[a.origin][0].get(a.key, [])
        duplicated += max(0, len(statuses) - 1)
        origin_posted = statuses.count("posted")
        transfer = books[a.origin][2].get(a.key)
        if a.remote:
            dest = books[a.destination][1].get(transfer, 0) if transfer else 0
            hub = books["hub"][1].get(transfer, 0) if (transfer and a.routed) else None
        else:
            dest, hub = origin_posted, None
        duplicated += max(0, dest - 1) + max(0, (hub or 0) - 1)
        hops = [origin_posted, dest] + ([hub] if hub is not None else [])
        if transfer in resolved and dest and not origin_posted and not hub:
            # The gone peer booked it before it went, and its answer never came back: the hub's
            # operator voided it. The records show it (a returning peer makes it `disputed`);
            # the till must have been told it was refused, never that it was booked.
            against_gone += 1
            if a.outcome != "refused":
                lost += 1
            continue
        if any(hops) and not all(hops):
            half_booked += 1
        if origin_posted:
            booked_at["origin"] += 1
        if dest:
            booked_at["destination"] += 1
        if hub:
            booked_at["hub"] += 1
        if a.outcome == "acknowledged" and hops != [1] * len(hops):
            lost += 1
        if a.outcome == "refused" and any(hops):
            refused_but_booked += 1
    alive = [node for name, node in cluster.nodes.items() if name != GONE]
    try:
        await asyncio.to_thread(settled, *alive)
        invariants = "ok"
    except AssertionError as exc:
        invariants = f"failed: {exc}"
    in_flight = await _in_flight(alive)
    unanswered = [
        {"origin": a.origin, "payee": a.payee, "key": a.key, "trade_id": a.trade_id}
        for a in attempts
        if a.outcome == "unknown"
    ]
    checkpoints = await asyncio.to_thread(sign_checkpoints, cluster)
    settlements = await _settlement_outcomes(cluster, report)
    to_gone = [a for a in attempts if a.destination == GONE]
    reversals = report.reversals
    unexpected_reversals = sum(
        n
        for answer, n in reversals.items()
        if answer not in ("federated:trade_federated", "local:201")
        and not (answer.startswith("local:") and answer[6:] in REVERSAL_REFUSALS)
    )
    reversed_twice = await _reversed_twice(cluster)
    remote = [a for a in attempts if a.remote]
    return {
        "seconds": round(report.seconds),
        "faults_injected": sum(report.faults.values()),
        "faults": dict(sorted(report.faults.items())),
        "attempted": len(attempts),
        "attempted_cross_network": len(remote),
        "attempted_through_hub": sum(1 for a in attempts if a.routed),
        "acknowledged": sum(1 for a in attempts if a.outcome == "acknowledged"),
        "acknowledged_cross_network": sum(1 for a in remote if a.outcome == "acknowledged"),
        "acknowledged_through_hub": sum(
            1 for a in attempts if a.routed and a.outcome == "acknowledged"
        ),
        "refused": sum(1 for a in attempts if a.outcome == "refused"),
        "refusal_codes": dict(
            Counter(a.remote_code or a.code for a in attempts if a.outcome == "refused")
        ),
        "answered_202_first": sum(1 for a in attempts if a.saw_in_flight),
        "booked_at_origin": booked_at["origin"],
        "booked_at_destination": booked_at["destination"],
        "booked_at_hub": booked_at["hub"],
        "lost": lost,
        "duplicated": duplicated,
        "refused_but_booked": refused_but_booked,
        "half_booked": half_booked,
        "unsure_when_faults_stopped": report.unsure_at_end,
        "unanswered": sum(1 for a in attempts if a.outcome == "unknown"),
        "retries": sum(a.tries - 1 for a in attempts),
        "server_errors": sum(a.server_errors for a in attempts),
        "invariants": invariants,
        "in_flight_at_the_end": in_flight,
        "unanswered_detail": unanswered[:20],
        "gone_peer": GONE,
        "gone_after_seconds": None if report.gone_at is None else round(report.gone_at),
        "attempted_to_gone_peer": len(to_gone),
        "acknowledged_to_gone_peer": sum(1 for a in to_gone if a.outcome == "acknowledged"),
        "sent_to_gone_peer_by_the_hub_when_faults_stopped": report.toward_gone,
        "resolved_by_operator": len(report.resolved),
        "resolved_but_booked_by_gone_peer": against_gone,
        **settlements,
        "reversals": dict(sorted(reversals.items())),
        "reversals_unexpected": unexpected_reversals,
        "reversed_twice": reversed_twice,
        "checkpoints_signed": checkpoints,
    }


async def _in_flight(nodes: list[Node]) -> list[dict[str, Any]]:
    """What is still in flight when the run is checked (none, when all is well): enough to see
    why, should a run end with something stuck."""
    stuck = []
    for node in nodes:
        rows = await node.fetch(
            "SELECT t.transfer_id::text AS transfer_id, t.direction, t.status, l.peer_code,"
            " t.payee_address, t.kind, t.attempts, t.last_error, t.expires_at::text,"
            " t.created_at::text, t.next_attempt_at::text"
            " FROM transfers t JOIN links l ON l.id = t.link_id"
            " WHERE t.status IN ('prepared', 'forwarded') ORDER BY t.created_at LIMIT 20"
        )
        stuck += [{"node": node.name, **dict(r)} for r in rows]
    return stuck


def sign_checkpoints(cluster: Cluster) -> dict[str, str]:
    """Each link, from the side named first: a checkpoint both sides sign, or why not."""
    signed = {}
    for node in cluster.nodes.values():
        for peer in cluster.nodes.values():
            if peer.name <= node.name or GONE in (node.name, peer.name):
                continue
            r = node.request("GET", f"/federation/links/{peer.name}", node.operator)
            if r.status_code != 200:
                continue
            r = node.request("POST", f"/federation/links/{peer.name}/checkpoints", node.operator)
            both = r.status_code == 201 and set(r.json()["signatures"]) == {node.name, peer.name}
            signed[f"{node.name}-{peer.name}"] = "signed" if both else f"{r.status_code} {r.text}"
    return signed


async def _reversed_twice(cluster: Cluster) -> int:
    twice = 0
    for node in cluster.nodes.values():
        rows = await node.fetch(
            "SELECT reverses_trade_id FROM trades WHERE kind = 'reversal'"
            " GROUP BY 1 HAVING count(*) > 1"
        )
        twice += len(rows)
    return twice


def _acknowledged_cross_network(report: Report) -> int:
    return sum(1 for a in report.attempts if a.remote and a.outcome == "acknowledged")


async def run(
    seconds: float, fault_every: float, tills_per_node: int, at_least: int = 0
) -> dict[str, Any]:
    """The run: faults for `seconds`, and then on until `at_least` cross-network trades were
    acknowledged (at most as long again), so that a slow machine still gives the checks as
    much to check as a fast one, rather than a count that depends on its speed."""
    workdir = Path(tempfile.mkdtemp(prefix="mc-fedchaos-"))
    fed = Federation(workdir)
    report = Report()
    try:
        cluster = await asyncio.to_thread(fed.start)
        stop = asyncio.Event()
        started = time.monotonic()
        workers = [
            asyncio.create_task(till(i * 10 + n, cluster, name, report, stop, patience=3.0))
            for i, name in enumerate(MEMBERS)
            if name != GONE
            for n in range(tills_per_node)
        ]
        injector = asyncio.create_task(
            inject(fed, cluster, report, stop, fault_every, gone_after=seconds / 2)
        )
        office = [
            asyncio.create_task(reverse(cluster, report, stop, 1.0, patience=3.0)),
            asyncio.create_task(settle(cluster, report, stop, 6.0, patience=3.0)),
        ]
        await asyncio.sleep(seconds)
        overtime = time.monotonic() + seconds
        while _acknowledged_cross_network(report) < at_least and time.monotonic() < overtime:  # noqa: ASYNC110 - a count the tills keep
            await asyncio.sleep(0.5)
        stop.set()
        await injector
        await asyncio.gather(*office)
        await asyncio.gather(*workers)
        report.seconds = time.monotonic() - started

        # The faults have stopped: every node but the gone one up; what the hub sent to the
        # gone peer is resolved by its operator once expired; every till asks again until it
        # has an answer.
        for name, node in cluster.nodes.items():
            if name != GONE and (node.proc is None or node.proc.poll() is not None):
                await asyncio.to_thread(node.start)
        await resolve_all_gone(cluster, report)
        unsure = [a for a in report.attempts if a.outcome == "unknown"]
        report.unsure_at_end = len(unsure)
        # A till's request that never reached its network books the trade only now; one to the
        # gone peer then waits for its expiry and the operator, who keeps resolving meanwhile.
        asked = asyncio.Event()
        operator = asyncio.create_task(keep_resolving(cluster, report, asked))
        async with httpx.AsyncClient(timeout=10) as client:
            await asyncio.gather(
                *(deliver(client, cluster.nodes[a.origin], a, None) for a in unsure)
            )
        asked.set()
        await operator
        await resolve_all_gone(cluster, report)
        return await check(cluster, report)
    finally:
        fed.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="mutualcredit federation fault run")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--fault-every", type=float, default=5)
    parser.add_argument("--tills-per-node", type=int, default=3)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    figures = asyncio.run(run(args.seconds, args.fault_every, args.tills_per_node))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")


if __name__ == "__main__":
    main()
