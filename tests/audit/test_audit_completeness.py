"""Every change is on record: the promise as a whole, tried from outside.

Two tests of one promise:
- through the API: every mutating operation of the service's OpenAPI document (as a running
  `mutualcredit serve` process serves it) is performed with valid input against real service
  processes (two of them, with their own databases, where an operation needs a peer network),
  and the audit log, read through `GET …/audit`, must gain the record: its action, its actor
  (the calling key's `role:key_id`, or `peer:<network>` for what a peer's signed request
  writes) and the fields that changed, in `before` and `after`. The table OPERATIONS says how to
  perform each one; an operation of the document missing from it fails the test, so a new
  write cannot be added without saying what it records;
- in the database: every table is audited whole (inserts, updates of every recorded column,
  deletes where rows may be deleted; TRUNCATE refused), or named in NOT_AUDITED with the reason.

And the actor of a change made outside any request: a transaction that names itself (the
command line's `cli:<command>`) is named in every record it writes.
"""

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mutualcredit import models  # noqa: F401 - every table, for the ORM
from mutualcredit.audit.context import act_as
from mutualcredit.auth import service as keys
from mutualcredit.auth.models import Role
from mutualcredit.db import create_engine, make_sessionmaker
from mutualcredit.federation import crypto
from mutualcredit.networks import service as networks
from mutualcredit.networks.schemas import NetworkCreate
from tests.federation.checks import wait
from tests.federation.cluster import Cluster, Node, auth, free_port
from tests.helpers import new_code

# ---------------------------------------------------------------------------------------------
# The database: which tables are audited, and whole
# ---------------------------------------------------------------------------------------------

NOT_AUDITED = {
    "entries": "a trade's bookings: the trade has the record, and entries never change",
    "trade_rejections": "a refused trade changes no state; its refusal is kept for retries",
    "limit_changes": "the history of limits, written by changes that have their own records",
    "audit_log": "the log itself (append-only, sealed once)",
    "audit_heads": "the chains' heads, moved by the sealer",
    "idempotency_records": "stored answers of admin writes, for retries",
    "federation_nonces": "the replay window of signed node-to-node requests",
    "link_health": "how calls to a link's peer went: bookkeeping, written by the calls",
    "webhook_attempts": "the delivery log of webhooks: bookkeeping, written by the deliveries",
    "alembic_version": "the schema's revision",
    "fee_rule_changes": "the history of fee rules, written by changes that have their own records",
    "fee_runs": "a periodic fee's progress through its accounts: bookkeeping of the sweeper, "
    "whose charges have their own records",
}

# pg_trigger.tgtype bits (src/include/catalog/pg_trigger.h).
ROW, BEFORE, INSERT, DELETE, UPDATE, TRUNCATE = 1, 2, 4, 8, 16, 32

_TRIGGERS = """
SELECT c.relname AS table_name, t.tgname, t.tgtype, p.proname,
       (SELECT array_agg(a.attname::text) FROM pg_attribute a
        WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])) AS update_of,
       t.tgargs
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
"""

_COLUMNS = """
SELECT c.relname AS table_name, array_agg(a.attname::text) AS columns
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
  AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY c.relname
"""


async def test_every_table_is_audited_whole_or_says_why_not(db: asyncpg.Connection) -> None:
    columns = {r["table_name"]: set(r["columns"]) for r in await db.fetch(_COLUMNS)}
    triggers = await db.fetch(_TRIGGERS)
    audit = {t["table_name"]: t for t in triggers if t["proname"] == "mc_audit_change"}
    assert set(columns) - set(audit) == set(NOT_AUDITED)

    def refused(table: str, event: int) -> bool:
        """Whether a guard refuses the event on the table before any row is touched."""
        return any(
            t["table_name"] == table
            and t["tgtype"] & BEFORE
            and t["tgtype"] & event
            and t["proname"] in ("mc_refuse_change", "mc_refuse_truncate")
            for t in triggers
        )

    for table, trigger in sorted(audit.items()):
        assert trigger["tgname"] == f"{table}_audit"
        kind = trigger["tgtype"]
        assert kind & ROW, f"{table}: a FOR EACH ROW trigger"
        assert not kind & BEFORE, f"{table}: an AFTER trigger (it sees the row as written)"
        # The arguments, each ended by a NUL byte.
        excluded = {arg.decode() for arg in bytes(trigger["tgargs"]).split(b"\x00")[:-1]}
        assert excluded <= columns[table], f"{table}: kept out, but no such column: {excluded}"
        assert kind & INSERT, f"{table}: inserts unrecorded"
        if not refused(table, UPDATE):
            assert kind & UPDATE, f"{table}: updates unrecorded"
            if trigger["update_of"] is not None:
                recorded = set(trigger["update_of"])
                assert recorded | excluded == columns[table], (
                    f"{table}: an update of {columns[table] - recorded - excluded} is unrecorded"
                )
        if not refused(table, DELETE):
            assert kind & DELETE, f"{table}: deletes unrecorded"
        assert refused(table, TRUNCATE), f"{table}: TRUNCATE would remove rows unrecorded"


async def test_a_trigger_without_arguments_records_every_field(db: asyncpg.Connection) -> None:
    """The defect found: a trigger with no arguments recorded neither before nor after, and no
    update at all. Direct SQL, as any code path would write."""
    code = new_code("bare")
    network_id = await db.fetchval(
        "INSERT INTO networks (code, name, unit_name, unit_symbol, scale, default_credit_limit)"
        " VALUES ($1, 'Bare', 'hour', 'h', 2, 100) RETURNING id",
        code,
    )
    async with db.transaction():
        await db.execute("SELECT set_config('mutualcredit.reason', 'test', true)")
        await db.execute("UPDATE networks SET name = 'Bare two' WHERE id = $1", network_id)
    rows = await db.fetch(
        "SELECT action, actor, before, after FROM audit_log WHERE network_id = $1 ORDER BY id",
        network_id,
    )
    assert [r["action"] for r in rows] == ["network.created", "network.updated"]
    created, updated = rows
    assert created["before"] is None
    assert '"name": "Bare"' in created["after"]
    assert (updated["before"], updated["after"]) == ('{"name": "Bare"}', '{"name": "Bare two"}')
    assert updated["actor"].startswith("sql:")


async def test_truncate_of_an_audited_table_is_refused(db: asyncpg.Connection) -> None:
    for table in ("networks", "api_keys", "payee_approvals", "link_peer_keys"):
        # In a transaction rolled back whatever happens: were the guard missing, the shared
        # test database would lose every row of the table (and, cascading, of others).
        transaction = db.transaction()
        await transaction.start()
        try:
            with pytest.raises(asyncpg.RestrictViolationError, match="on record"):
                await db.execute(f"TRUNCATE {table} CASCADE")
        finally:
            await transaction.rollback()


async def test_a_transaction_that_names_itself_is_the_actor_of_its_records(
    database_url: str,
) -> None:
    """The command line names each command as the actor of what it writes (`cli:<command>`),
    not the database user: `act_as` in the command's transaction, before its first write; the
    history and audit triggers read it (mutualcredit.actor)."""
    engine = create_engine(database_url, pool_size=1)
    code = new_code("cli")
    try:
        async with make_sessionmaker(engine).begin() as session:
            await act_as(session, "cli:create-network")
            network = await networks.create_network(
                session,
                NetworkCreate(
                    code=code,
                    name="Made by the command line",
                    unit_name="hour",
                    unit_symbol="h",
                    scale=2,
                    default_credit_limit=100,
                    default_balance_max=None,
                ),
            )
            await keys.create_key(session, role=Role.operator, network_id=network.id)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(database_url)
    try:
        records = await conn.fetch(
            "SELECT action, actor FROM audit_log WHERE network_id = $1 ORDER BY id", network.id
        )
        history = await conn.fetch(
            "SELECT actor FROM limit_changes WHERE network_id = $1", network.id
        )
    finally:
        await conn.close()
    assert [(r["action"], r["actor"]) for r in records] == [
        ("network.created", "cli:create-network"),
        ("api_key.created", "cli:create-network"),
    ]
    assert [r["actor"] for r in history] == ["cli:create-network"]


# ---------------------------------------------------------------------------------------------
# The API: every mutating operation, against real service processes
# ---------------------------------------------------------------------------------------------


@dataclass
class Net:
    """A network of its own on one node, with its operator and members (their tokens)."""

    node: Node
    code: str
    operator: str
    platform: str
    members: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"{self.node.url}/v1/networks/{self.code}"

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base}{path}",
            headers={**auth(token or self.operator), **(headers or {})},
            timeout=30,
            **kwargs,
        )

    def ok(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        r = self.call(method, path, token, **kwargs)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def member(self, code: str, **fields: Any) -> str:
        self.ok("POST", "/accounts", json={"code": code, **fields})
        created = self.ok("POST", "/keys", json={"role": "member", "account": code})
        self.members[code] = created["token"]
        return str(created["token"])

    def pay(self, payer: str, payee: str, amount: int, **extra: Any) -> dict[str, Any]:
        body = {"payer": payer, "payee": payee, "amount": amount, **extra}
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        trade: dict[str, Any] = self.ok(
            "POST", "/trades", self.members[payer], json=body, headers=headers
        )
        return trade

    def records(self) -> list[dict[str, Any]]:
        """The whole log, page by page, as an auditor of the network reads it."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.ok("GET", "/audit", params=params)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def actor(role: str, token: str) -> str:
    """A key's actor: `role:key_id` (tokens are mc_<key_id>_<secret>)."""
    return f"{role}:{token.split('_')[1]}"


# Every network the operations make, so that a test checks what each one recorded, set-up
# included (a set-up write is a write too).
CREATED: list[Net] = []


def new_net(node: Node, **fields: Any) -> Net:
    code = new_code("rec")
    r = httpx.post(
        f"{node.url}/v1/networks",
        json={
            "code": code,
            "name": f"Network {code}",
            "unit_name": "hour",
            "unit_symbol": "h",
            "scale": 2,
            "default_credit_limit": 1_000,
            **fields,
        },
        headers=auth(node.platform),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    net = Net(node=node, code=code, operator="", platform=node.platform)
    net.operator = net.ok("POST", "/keys", node.platform, json={"role": "operator"})["token"]
    CREATED.append(net)
    return net


def link(a: Net, b: Net, **fields: Any) -> dict[str, Any]:
    """a's side of a link to b (b's key read from its public descriptor, which b's operator
    publishes by making b's first key when it has none)."""
    url = f"{b.node.url}/federation/v1/networks/{b.code}/descriptor"
    if httpx.get(url, timeout=30).status_code == 404:
        b.ok("POST", "/federation/keys/rotate")
    descriptor = httpx.get(url, timeout=30).json()
    key = next(k for k in descriptor["keys"] if k["status"] == "active")
    created: dict[str, Any] = a.ok(
        "POST",
        "/federation/links",
        json={
            "peer": b.code,
            "peer_url": b.node.url,
            "peer_key": {"key_id": key["key_id"], "public_key": key["public_key"]},
            "rate": {"num": 1, "den": 1},
            "credit_limit": 100_000,
            "balance_max": 100_000,
            **fields,
        },
    )
    return created


def linked(world: "World") -> tuple[Net, Net]:
    """Two networks on two nodes, linked both ways and agreed."""
    a, b = new_net(world.a), new_net(world.b)
    link(a, b)
    link(b, a)
    a.ok("POST", f"/federation/links/{b.code}/agree")
    return a, b


ANY = object()  # a field that must be there (and, in an update, must have changed)


@dataclass
class Record:
    """A record the operation must add to `net`'s log: its action and actor, and the fields
    (some of them) it must hold in `before` and `after` (None: that side must be null)."""

    net: Net
    action: str
    actor: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    subject_id: str | None = None
    reason: str | None = None


@dataclass
class World:
    a: Node
    b: Node


Operation = Callable[[World, Callable[[Net], None]], list[Record]]


def _update(field_name: str, before: Any, after: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return {field_name: before}, {field_name: after}


# -- each operation: set up what it needs, mark the logs (`watch`), perform it, and say what it
#    must have recorded. `watch(net)` marks where a network's log stands before the operation.


def create_network(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a, default_balance_max=5_000)
    return [
        Record(
            net,
            "network.created",
            actor("platform", w.a.platform),
            before=None,
            after={
                "code": net.code,
                "name": f"Network {net.code}",
                "default_credit_limit": 1_000,
                "default_balance_max": 5_000,
                "scale": 2,
            },
        )
    ]


def update_network(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    watch(net)
    net.ok(
        "PATCH",
        "",
        json={"name": "Renamed", "default_credit_limit": 2_000, "reason": "a bigger season"},
    )
    return [
        Record(
            net,
            "network.updated",
            actor("operator", net.operator),
            before={"name": f"Network {net.code}", "default_credit_limit": 1_000},
            after={"name": "Renamed", "default_credit_limit": 2_000},
            reason="a bigger season",
        )
    ]


def open_account(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    watch(net)
    net.ok("POST", "/accounts", json={"code": "bakery", "name": "The Bakery"})
    return [
        Record(
            net,
            "account.created",
            actor("operator", net.operator),
            before=None,
            after={"code": "bakery", "name": "The Bakery", "credit_limit": 1_000},
        )
    ]


def set_approval(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    alice = net.member("alice")
    net.member("bakery")
    watch(net)
    net.ok("PUT", "/accounts/alice/approvals/bakery", alice, json={"max_amount": 500})
    net.ok("PUT", "/accounts/alice/approvals/bakery", alice, json={"max_amount": 900})
    who = actor("member", alice)
    return [
        Record(net, "payee_approval.created", who, before=None, after={"max_amount": 500}),
        Record(
            net,
            "payee_approval.updated",
            who,
            before={"max_amount": 500},
            after={"max_amount": 900},
        ),
    ]


def delete_approval(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    alice = net.member("alice")
    net.member("bakery")
    net.ok("PUT", "/accounts/alice/approvals/bakery", alice, json={"max_amount": 500})
    watch(net)
    net.ok("DELETE", "/accounts/alice/approvals/bakery", alice)
    return [
        Record(
            net,
            "payee_approval.deleted",
            actor("member", alice),
            before={"max_amount": 500, "created_by": actor("member", alice)},
            after=None,
        )
    ]


def close_account(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    net.member("alice")
    watch(net)
    net.ok("POST", "/accounts/alice/close", json={"reason": "moved away"})
    return [
        Record(
            net,
            "account.closed",
            actor("operator", net.operator),
            before={"status": "active"},
            after={"status": "closed"},
            reason="moved away",
        )
    ]


def set_limits(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    net.member("alice")
    watch(net)
    net.ok(
        "PUT",
        "/accounts/alice/limits",
        json={"credit_limit": 3_000, "balance_max": 9_000, "reason": "harvest"},
    )
    return [
        Record(
            net,
            "account.limits_changed",
            actor("operator", net.operator),
            before={"credit_limit": 1_000, "balance_max": None},
            after={"credit_limit": 3_000, "balance_max": 9_000},
            reason="harvest",
        )
    ]


def reactivate_account(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    net.member("alice")
    net.ok("POST", "/accounts/alice/suspend", json={"reason": "paperwork"})
    watch(net)
    net.ok("POST", "/accounts/alice/reactivate", json={"reason": "paperwork done"})
    return [
        Record(
            net,
            "account.active",
            actor("operator", net.operator),
            before={"status": "suspended"},
            after={"status": "active"},
            reason="paperwork done",
        )
    ]


def suspend_account(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    net.member("alice")
    watch(net)
    net.ok("POST", "/accounts/alice/suspend", json={"reason": "paperwork"})
    return [
        Record(
            net,
            "account.suspended",
            actor("operator", net.operator),
            before={"status": "active"},
            after={"status": "suspended"},
            reason="paperwork",
        )
    ]


def create_key(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    watch(net)
    created = net.ok("POST", "/keys", json={"role": "auditor", "label": "books"})
    return [
        Record(
            net,
            "api_key.created",
            actor("operator", net.operator),
            before=None,
            after={"key_id": created["key_id"], "role": "auditor", "label": "books"},
        )
    ]


def revoke_key(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    created = net.ok("POST", "/keys", json={"role": "auditor"})
    watch(net)
    net.ok("POST", f"/keys/{created['key_id']}/revoke")
    return [
        Record(
            net,
            "api_key.revoked",
            actor("operator", net.operator),
            before={"revoked_at": None},
            after={"revoked_at": ANY},
        )
    ]


def apply_defaults(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """A dry run (the default) changes nothing and must record nothing; then the real one."""
    net = new_net(w.a)
    net.member("alice", credit_limit=200)
    watch(net)
    plan = net.ok("POST", "/limits/apply-defaults", json={"reason": "one rule for all"})
    assert plan["dry_run"] is True
    assert net.records()[-1]["action"] == "api_key.created", "a dry run recorded something"
    net.ok("POST", "/limits/apply-defaults", json={"reason": "one rule for all", "dry_run": False})
    return [
        Record(
            net,
            "account.limits_changed",
            actor("operator", net.operator),
            before={"credit_limit": 200},
            after={"credit_limit": 1_000},
            reason="one rule for all",
        )
    ]


def _request(net: Net) -> dict[str, Any]:
    net.member("alice")
    bakery = net.member("bakery")
    created: dict[str, Any] = net.ok(
        "POST", "/requests", bakery, json={"payer": "alice", "payee": "bakery", "amount": 400}
    )
    return created


def create_request(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    net.member("alice")
    bakery = net.member("bakery")
    watch(net)
    created = net.ok(
        "POST",
        "/requests",
        bakery,
        json={"payer": "alice", "payee": "bakery", "amount": 400, "description": "bread"},
    )
    return [
        Record(
            net,
            "payment_request.created",
            actor("member", bakery),
            before=None,
            after={"amount": 400, "description": "bread", "status": "open"},
            subject_id=created["id"],
        )
    ]


def accept_request(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    request = _request(net)
    watch(net)
    accepted = net.ok("POST", f"/requests/{request['id']}/accept", net.members["alice"])
    who = actor("member", net.members["alice"])
    return [
        Record(
            net,
            "payment_request.accepted",
            who,
            before={"status": "open", "trade_id": None, "resolved_at": None},
            after={"status": "accepted", "trade_id": accepted["trade_id"], "resolved_at": ANY},
            subject_id=request["id"],
        ),
        Record(
            net,
            "trade.created",
            who,
            before=None,
            after={"amount": 400, "kind": "request", "status": "posted"},
            subject_id=accepted["trade_id"],
        ),
    ]


def cancel_request(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    request = _request(net)
    watch(net)
    net.ok("POST", f"/requests/{request['id']}/cancel", net.members["bakery"], json={})
    return [
        Record(
            net,
            "payment_request.cancelled",
            actor("member", net.members["bakery"]),
            before={"status": "open", "resolved_at": None},
            after={"status": "cancelled", "resolved_at": ANY},
            subject_id=request["id"],
        )
    ]


def reject_request(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    request = _request(net)
    watch(net)
    net.ok(
        "POST",
        f"/requests/{request['id']}/reject",
        net.members["alice"],
        json={"reason": "never ordered"},
    )
    return [
        Record(
            net,
            "payment_request.rejected",
            actor("member", net.members["alice"]),
            before={"status": "open", "reason": None, "resolved_at": None},
            after={"status": "rejected", "reason": "never ordered", "resolved_at": ANY},
            subject_id=request["id"],
            reason="never ordered",
        )
    ]


def _pair(w: World) -> Net:
    net = new_net(w.a)
    net.member("alice")
    net.member("bakery")
    return net


def create_trade(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = _pair(w)
    watch(net)
    trade = net.pay("alice", "bakery", 250, description="bread")
    return [
        Record(
            net,
            "trade.created",
            actor("member", net.members["alice"]),
            before=None,
            after={"amount": 250, "status": "posted", "description": "bread"},
            subject_id=trade["id"],
        )
    ]


def post_trade(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = _pair(w)
    hold = net.pay("alice", "bakery", 300, pending=True)
    watch(net)
    net.ok("POST", f"/trades/{hold['id']}/post", json={"amount": 200})
    return [
        Record(
            net,
            "trade.posted",
            actor("operator", net.operator),
            before={"status": "pending", "posted_amount": None, "resolved_at": None},
            after={"status": "posted", "posted_amount": 200, "resolved_at": ANY},
            subject_id=hold["id"],
        )
    ]


def void_trade(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = _pair(w)
    hold = net.pay("alice", "bakery", 300, pending=True)
    watch(net)
    net.ok("POST", f"/trades/{hold['id']}/void", json={})
    return [
        Record(
            net,
            "trade.voided",
            actor("operator", net.operator),
            before={"status": "pending", "resolved_at": None},
            after={"status": "voided", "resolved_at": ANY},
            subject_id=hold["id"],
        )
    ]


def reverse_trade(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = _pair(w)
    trade = net.pay("alice", "bakery", 120)
    watch(net)
    reversal = net.ok("POST", f"/trades/{trade['id']}/reverse", json={"reason": "twice"})
    return [
        Record(
            net,
            "trade.created",
            actor("operator", net.operator),
            before=None,
            after={"kind": "reversal", "reverses_trade_id": trade["id"], "amount": 120},
            subject_id=reversal["id"],
            reason="twice",
        )
    ]


# -- federation: two real service processes, each network on its own node


def create_link(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = new_net(w.a), new_net(w.b)
    watch(a)
    link(a, b)
    who = actor("operator", a.operator)
    return [
        Record(
            a,
            "link.created",
            who,
            before=None,
            after={"peer_code": b.code, "peer_url": b.node.url, "status": "proposed"},
        ),
        Record(a, "account.created", who, before=None, after={"code": f"link.{b.code}"}),
        Record(a, "account.created", who, before=None, after={"code": f"settlement.{b.code}"}),
        Record(a, "link_peer_key.created", who, before=None, after={"status": "active"}),
    ]


def update_link(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    watch(a)
    a.ok(
        "PATCH",
        f"/federation/links/{b.code}",
        json={"default_route": True, "reason": "the hub"},
    )
    return [
        Record(
            a,
            "link.updated",
            actor("operator", a.operator),
            before={"default_route": False},
            after={"default_route": True},
            reason="the hub",
        )
    ]


def agree_link(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = new_net(w.a), new_net(w.b)
    link(a, b)
    link(b, a)
    watch(a)
    a.ok("POST", f"/federation/links/{b.code}/agree")
    return [
        Record(
            a,
            "link.active",
            actor("operator", a.operator),
            before={"status": "proposed", "agreed_at": None},
            after={"status": "active", "agreed_at": ANY},
        )
    ]


def confirm_link(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """The peer's side of agree: what the signed request writes at b."""
    a, b = new_net(w.a), new_net(w.b)
    link(a, b)
    link(b, a)
    watch(b)
    a.ok("POST", f"/federation/links/{b.code}/agree")
    return [
        Record(
            b,
            "link.active",
            f"peer:{a.code}",
            before={"status": "proposed", "agreed_at": None},
            after={"status": "active", "agreed_at": ANY},
        )
    ]


def create_checkpoint(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    watch(a)
    a.ok("POST", f"/federation/links/{b.code}/checkpoints")
    return [
        Record(
            a,
            "link_checkpoint.created",
            actor("operator", a.operator),
            before=None,
            after={"payload": ANY, "signatures": ANY},
        )
    ]


def countersign_checkpoint(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    watch(b)
    a.ok("POST", f"/federation/links/{b.code}/checkpoints")
    return [
        Record(
            b,
            "link_checkpoint.created",
            f"peer:{a.code}",
            before=None,
            after={"payload": ANY, "signatures": ANY},
        )
    ]


def _fresh_key() -> dict[str, str]:
    """A peer key as an operator registers one: an Ed25519 public key, base64url."""
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"key_id": f"k-{uuid.uuid4().hex[:8]}", "public_key": crypto.b64e(public)}


def add_peer_key(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    key = _fresh_key()
    watch(a)
    a.ok("POST", f"/federation/links/{b.code}/peer-keys", json=key)
    return [
        Record(
            a,
            "link_peer_key.created",
            actor("operator", a.operator),
            before=None,
            after={"key_id": key["key_id"], "status": "active"},
        )
    ]


def revoke_peer_key(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    key = _fresh_key()
    a.ok("POST", f"/federation/links/{b.code}/peer-keys", json=key)
    watch(a)
    a.ok("POST", f"/federation/links/{b.code}/peer-keys/{key['key_id']}/revoke")
    return [
        Record(
            a,
            "link_peer_key.revoked",
            actor("operator", a.operator),
            before={"status": "active"},
            after={"status": "revoked"},
        )
    ]


def suspend_link(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    watch(a)
    a.ok("POST", f"/federation/links/{b.code}/suspend", json={"reason": "audit"})
    return [
        Record(
            a,
            "link.suspended",
            actor("operator", a.operator),
            before={"status": "active", "status_reason": None},
            after={"status": "suspended", "status_reason": "audit"},
            reason="audit",
        )
    ]


def resume_link(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, b = linked(w)
    a.ok("POST", f"/federation/links/{b.code}/suspend", json={"reason": "audit"})
    watch(a)
    a.ok("POST", f"/federation/links/{b.code}/resume", json={"reason": "audit done"})
    return [
        Record(
            a,
            "link.active",
            actor("operator", a.operator),
            before={"status": "suspended", "status_reason": "audit"},
            after={"status": "active", "status_reason": "audit done"},
            reason="audit done",
        )
    ]


def rotate_key(w: World, watch: Callable[[Net], None]) -> list[Record]:
    a, _ = linked(w)
    watch(a)
    rotated = a.ok("POST", "/federation/keys/rotate")
    who = actor("operator", a.operator)
    return [
        Record(
            a,
            "node_key.retired",
            who,
            before={"status": "active", "retired_at": None},
            after={"status": "retired", "retired_at": ANY},
        ),
        Record(
            a,
            "node_key.created",
            who,
            before=None,
            after={"key_id": rotated["key_id"], "status": "active"},
        ),
    ]


def receive_key(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """The peer's side of a rotation: the new key, announced by a signed request, at b."""
    a, b = linked(w)
    watch(b)
    rotated = a.ok("POST", "/federation/keys/rotate")
    assert rotated["peers"] == {b.code: "registered"}
    return [
        Record(
            b,
            "link_peer_key.created",
            f"peer:{a.code}",
            before=None,
            after={"key_id": rotated["key_id"], "status": "active"},
        ),
        Record(
            b,
            "link_peer_key.updated",
            f"peer:{a.code}",
            before={"expires_at": None},
            after={"expires_at": ANY},
        ),
    ]


def _crossed(w: World) -> tuple[Net, Net]:
    """Linked networks with a member each: ann at a, bob at b."""
    a, b = linked(w)
    a.member("ann")
    b.member("bob")
    return a, b


def receive_transfer(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """A cross-network trade: what the signed transfer writes at the destination."""
    a, b = _crossed(w)
    watch(b)
    trade = a.pay("ann", f"{b.code}/bob", 70)
    assert trade["transfer"]["status"] == "accepted", trade
    peer = f"peer:{a.code}"
    return [
        Record(
            b,
            "transfer.created",
            peer,
            before=None,
            after={"direction": "in", "amount_received": 70, "status": "accepted"},
        ),
        Record(
            b,
            "trade.created",
            peer,
            before=None,
            after={"amount": 70, "kind": "federation", "status": "posted"},
        ),
    ]


def receive_link_status(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """a suspends its side; its outbox loop tells b, which records it as the peer's status."""
    a, b = linked(w)
    watch(b)
    a.ok("POST", f"/federation/links/{b.code}/suspend", json={"reason": "audit"})
    wait(lambda: b.ok("GET", f"/federation/links/{a.code}")["peer_status"] == "suspended")
    return [
        Record(
            b,
            "link.updated",
            f"peer:{a.code}",
            before={"peer_status": None},
            after={"peer_status": "suspended"},
            reason="audit",
        )
    ]


def resolve_transfer(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """b is gone (a's link points nowhere); past the expiry a's operator voids the hold."""
    a, b = _crossed(w)
    a.ok(
        "PATCH",
        f"/federation/links/{b.code}",
        json={"peer_url": f"http://127.0.0.1:{free_port()}", "reason": "b is gone"},
    )
    trade = a.pay("ann", f"{b.code}/bob", 70)
    transfer = trade["transfer"]
    expires_at = datetime.fromisoformat(transfer["expires_at"])
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.5)
    watch(a)
    a.ok(
        "POST",
        f"/federation/links/{b.code}/transfers/{transfer['transfer_id']}/resolve",
        json={"outcome": "void", "reason": "b closed down"},
    )
    at_a = actor("operator", a.operator)
    return [
        Record(
            a,
            "transfer.resolved",
            at_a,
            before={"status": "prepared", "resolution": None},
            after={"status": "resolved", "resolution": "void"},
            reason="b closed down",
        ),
        Record(
            a,
            "trade.voided",
            at_a,
            before={"status": "pending"},
            after={"status": "voided"},
            reason="b closed down",
        ),
    ]


def record_settlement(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """Both sides record the settlement; b, which is owed, executes it as a transfer."""
    a, b = _crossed(w)
    a.pay("ann", f"{b.code}/bob", 500)
    watch(a)
    watch(b)
    body = {"reference": "invoice-7", "amount": 300}
    a.ok("POST", f"/federation/links/{b.code}/settlements", json=body)
    b.ok("POST", f"/federation/links/{a.code}/settlements", json=body)
    at_a, at_b = actor("operator", a.operator), actor("operator", b.operator)
    return [
        Record(
            a,
            "settlement.created",
            at_a,
            before=None,
            after={"reference": "invoice-7", "amount": 300, "status": "agreed"},
        ),
        Record(
            b,
            "settlement.created",
            at_b,
            before=None,
            after={"reference": "invoice-7", "amount": 300, "status": "agreed"},
        ),
        Record(
            b,
            "settlement.sent",
            at_b,
            before={"status": "agreed", "transfer_id": None},
            after={"status": "sent", "transfer_id": ANY},
        ),
        Record(
            b,
            "trade.created",
            at_b,
            before=None,
            after={"kind": "settlement", "amount": 300, "status": "pending"},
        ),
        Record(
            b,
            "transfer.created",
            at_b,
            before=None,
            after={"kind": "settlement", "direction": "out", "status": "prepared"},
        ),
    ]


def cancel_settlement(w: World, watch: Callable[[Net], None]) -> list[Record]:
    """a, which owes, records a settlement and cancels it, with a reason."""
    a, b = _crossed(w)
    a.pay("ann", f"{b.code}/bob", 500)
    body = {"reference": "invoice-8", "amount": 100}
    a.ok("POST", f"/federation/links/{b.code}/settlements", json=body)
    watch(a)
    a.ok(
        "POST",
        f"/federation/links/{b.code}/settlements/invoice-8/cancel",
        json={"reason": "recorded twice"},
    )
    return [
        Record(
            a,
            "settlement.cancelled",
            actor("operator", a.operator),
            before={"status": "agreed", "status_reason": None},
            after={"status": "cancelled", "status_reason": "recorded twice"},
            reason="recorded twice",
        )
    ]


# -- fees: a rule made and changed, and a levy it charges (a trade of its own, on record as a
#    trade: a charge is on record itself only when it booked nothing, fee_charges_audit)

LEVY = {
    "code": "levy",
    "kind": "levy",
    "treasury": "pot",
    "charge": "payer",
    "rate": {"num": 1, "den": 100},
    "amount": 2,
    "reason": "the network pays for itself",
}


def create_fee_rule(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = _pair(w)
    net.ok("POST", "/accounts", json={"code": "pot", "kind": "system"})
    watch(net)
    made = net.ok("POST", "/fee-rules", json=LEVY)
    assert made["code"] == "levy"
    (levy,) = net.pay("alice", "bakery", 500)["fees"]
    who = actor("operator", net.operator)
    alice = actor("member", net.members["alice"])
    return [
        Record(
            net,
            "fee_rule.created",
            who,
            before=None,
            after={
                "code": "levy",
                "kind": "levy",
                "rate_num": 1,
                "rate_den": 100,
                "amount": 2,
                "charge_payer": True,
                "charge_payee": False,
                "created_by": who,
            },
            reason="the network pays for itself",
        ),
        Record(
            net,
            "trade.created",
            alice,
            before=None,
            after={"kind": "fee", "amount": 7, "status": "posted"},
            subject_id=levy["trade_id"],
        ),
    ]


def update_fee_rule(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    net.ok("POST", "/accounts", json={"code": "pot", "kind": "system"})
    net.ok("POST", "/fee-rules", json=LEVY)
    watch(net)
    net.ok(
        "PATCH", "/fee-rules/levy", json={"maximum": 50, "description": "capped", "reason": "fair"}
    )
    return [
        Record(
            net,
            "fee_rule.updated",
            actor("operator", net.operator),
            before={"maximum": None, "description": ""},
            after={"maximum": 50, "description": "capped"},
            reason="fair",
        )
    ]


# -- the table: every mutating operation of the OpenAPI document, and how to perform it

# -- webhooks: endpoints at a name that never resolves (.invalid), so nothing is delivered.


def _webhook(net: Net) -> dict[str, Any]:
    body = {"url": "https://hooks.invalid/in", "event_types": ["trade.posted"]}
    made: dict[str, Any] = net.ok("POST", "/webhooks", json=body)
    return made


def create_webhook(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    watch(net)
    made = _webhook(net)
    return [
        Record(
            net,
            "webhook_endpoint.created",
            actor("operator", net.operator),
            before=None,
            after={
                "url": "https://hooks.invalid/in",
                "event_types": ["trade.posted"],
                "status": "enabled",
                "secret_version": 1,
            },
            subject_id=made["id"],
        )
    ]


def update_webhook(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    made = _webhook(net)
    watch(net)
    net.ok(
        "PATCH",
        f"/webhooks/{made['id']}",
        json={"url": "https://books.invalid/in", "description": "books"},
    )
    return [
        Record(
            net,
            "webhook_endpoint.updated",
            actor("operator", net.operator),
            before={"url": "https://hooks.invalid/in", "description": ""},
            after={"url": "https://books.invalid/in", "description": "books"},
            subject_id=made["id"],
        )
    ]


def rotate_webhook_secret(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    made = _webhook(net)
    watch(net)
    net.ok("POST", f"/webhooks/{made['id']}/rotate-secret")
    return [
        Record(
            net,
            "webhook_endpoint.updated",
            actor("operator", net.operator),
            before={"secret_version": 1, "previous_secret_expires_at": None},
            after={"secret_version": 2, "previous_secret_expires_at": ANY},
            subject_id=made["id"],
        )
    ]


def redeliver_event(w: World, watch: Callable[[Net], None]) -> list[Record]:
    net = new_net(w.a)
    made = _webhook(net)
    net.member("alice")
    net.member("bob")
    net.pay("alice", "bob", 5)
    events: list[dict[str, Any]] = []

    def sealed() -> bool:
        events[:] = net.ok("GET", "/events", params={"types": "trade.posted"})["items"]
        return bool(events)

    wait(sealed)
    watch(net)
    net.ok("POST", f"/webhooks/{made['id']}/redeliveries", json={"seq": events[0]["seq"]})
    return [
        Record(
            net,
            "webhook_redelivery_request.created",
            actor("operator", net.operator),
            before=None,
            after={"endpoint_id": made["id"], "seq": events[0]["seq"]},
        )
    ]


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/networks"): create_network,
    ("POST", "/v1/networks/{network}/webhooks"): create_webhook,
    ("PATCH", "/v1/networks/{network}/webhooks/{webhook}"): update_webhook,
    ("POST", "/v1/networks/{network}/webhooks/{webhook}/rotate-secret"): rotate_webhook_secret,
    ("POST", "/v1/networks/{network}/webhooks/{webhook}/redeliveries"): redeliver_event,
    ("PATCH", "/v1/networks/{network}"): update_network,
    ("POST", "/v1/networks/{network}/accounts"): open_account,
    ("PUT", "/v1/networks/{network}/accounts/{account}/approvals/{payee}"): set_approval,
    ("DELETE", "/v1/networks/{network}/accounts/{account}/approvals/{payee}"): delete_approval,
    ("POST", "/v1/networks/{network}/accounts/{account}/close"): close_account,
    ("PUT", "/v1/networks/{network}/accounts/{account}/limits"): set_limits,
    ("POST", "/v1/networks/{network}/accounts/{account}/reactivate"): reactivate_account,
    ("POST", "/v1/networks/{network}/accounts/{account}/suspend"): suspend_account,
    ("POST", "/v1/networks/{network}/keys"): create_key,
    ("POST", "/v1/networks/{network}/keys/{key_id}/revoke"): revoke_key,
    ("POST", "/v1/networks/{network}/limits/apply-defaults"): apply_defaults,
    ("POST", "/v1/networks/{network}/fee-rules"): create_fee_rule,
    ("PATCH", "/v1/networks/{network}/fee-rules/{code}"): update_fee_rule,
    ("POST", "/v1/networks/{network}/requests"): create_request,
    ("POST", "/v1/networks/{network}/requests/{request_id}/accept"): accept_request,
    ("POST", "/v1/networks/{network}/requests/{request_id}/cancel"): cancel_request,
    ("POST", "/v1/networks/{network}/requests/{request_id}/reject"): reject_request,
    ("POST", "/v1/networks/{network}/trades"): create_trade,
    ("POST", "/v1/networks/{network}/trades/{trade_id}/post"): post_trade,
    ("POST", "/v1/networks/{network}/trades/{trade_id}/reverse"): reverse_trade,
    ("POST", "/v1/networks/{network}/trades/{trade_id}/void"): void_trade,
    ("POST", "/v1/networks/{network}/federation/keys/rotate"): rotate_key,
    ("POST", "/v1/networks/{network}/federation/links"): create_link,
    ("PATCH", "/v1/networks/{network}/federation/links/{peer}"): update_link,
    ("POST", "/v1/networks/{network}/federation/links/{peer}/agree"): agree_link,
    ("POST", "/v1/networks/{network}/federation/links/{peer}/checkpoints"): create_checkpoint,
    ("POST", "/v1/networks/{network}/federation/links/{peer}/peer-keys"): add_peer_key,
    (
        "POST",
        "/v1/networks/{network}/federation/links/{peer}/peer-keys/{key_id}/revoke",
    ): revoke_peer_key,
    ("POST", "/v1/networks/{network}/federation/links/{peer}/resume"): resume_link,
    ("POST", "/v1/networks/{network}/federation/links/{peer}/settlements"): record_settlement,
    (
        "POST",
        "/v1/networks/{network}/federation/links/{peer}/settlements/{reference}/cancel",
    ): cancel_settlement,
    ("POST", "/v1/networks/{network}/federation/links/{peer}/suspend"): suspend_link,
    (
        "POST",
        "/v1/networks/{network}/federation/links/{peer}/transfers/{transfer_id}/resolve",
    ): resolve_transfer,
    # Node to node: signed by a peer network, so performed by the peer's own operation.
    ("POST", "/federation/v1/networks/{network}/link"): confirm_link,
    ("POST", "/federation/v1/networks/{network}/link/status"): receive_link_status,
    ("POST", "/federation/v1/networks/{network}/keys"): receive_key,
    ("POST", "/federation/v1/networks/{network}/checkpoints"): countersign_checkpoint,
    ("POST", "/federation/v1/networks/{network}/transfers"): receive_transfer,
}


@pytest.fixture(scope="module")
def world(server_url: str) -> Iterator[World]:
    cluster = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-audit-")))
    try:
        yield World(a=cluster.add("records"), b=cluster.add("peers"))
    finally:
        cluster.close()


def _mutating_operations(node: Node) -> set[tuple[str, str]]:
    document = httpx.get(f"{node.url}/openapi.json", timeout=30).json()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }


def test_every_write_of_the_api_is_in_the_table(world: World) -> None:
    in_document = _mutating_operations(world.a)
    assert in_document - set(OPERATIONS) == set(), "writes with no entry in OPERATIONS"
    assert set(OPERATIONS) - in_document == set(), "entries for writes the API no longer has"


def _matches(expected: Record, record: dict[str, Any]) -> list[str]:
    """What of `expected` the record lacks (empty: it matches)."""
    problems = []
    if record["actor"] != expected.actor:
        problems.append(f"actor {record['actor']!r}, not {expected.actor!r}")
    if expected.reason is not None and record["reason"] != expected.reason:
        problems.append(f"reason {record['reason']!r}, not {expected.reason!r}")
    for side in ("before", "after"):
        want: dict[str, Any] | None = getattr(expected, side)
        got = record[side]
        if want is None:
            if got is not None:
                problems.append(f"{side} {got!r}, not null")
            continue
        if not isinstance(got, dict):
            problems.append(f"{side} {got!r}, not the fields {sorted(want)}")
            continue
        for name, value in want.items():
            if name not in got:
                problems.append(f"{side} lacks {name!r}")
            elif value is not ANY and got[name] != value:
                problems.append(f"{side}[{name!r}] = {got[name]!r}, not {value!r}")
    return problems


@pytest.mark.parametrize("operation", sorted(OPERATIONS), ids=" ".join)
def test_each_write_is_on_record(world: World, operation: tuple[str, str]) -> None:
    marks: dict[str, tuple[Net, int]] = {}

    def watch(net: Net) -> None:
        marks[net.code] = (net, len(net.records()))

    first = len(CREATED)
    expected = OPERATIONS[operation](world, watch)
    for net in [*CREATED[first:], *(record.net for record in expected)]:
        marks.setdefault(net.code, (net, 0))
    gained = {code: net.records()[mark:] for code, (net, mark) in marks.items()}

    for record in expected:
        candidates = [
            r
            for r in gained[record.net.code]
            if r["action"] == record.action
            and (record.subject_id is None or r["subject_id"] == record.subject_id)
        ]
        assert candidates, (
            f"no {record.action} on {record.net.code}; the operation recorded "
            f"{[r['action'] for r in gained[record.net.code]]}"
        )
        problems = [_matches(record, r) for r in candidates]
        assert [] in problems, f"{record.action} on {record.net.code}: {problems}"

    for code, records in gained.items():
        for r in records:
            # Whatever else the operation (and its set-up) wrote: named, with its fields.
            assert not r["actor"].startswith("sql:"), f"{code}: {r['action']} by {r['actor']}"
            assert r["before"] is not None or r["after"] is not None, f"{code}: {r}"
            if r["before"] is not None and r["after"] is not None:
                # An update holds the changed fields only, each on both sides.
                assert set(r["before"]) == set(r["after"]), r
                assert all(r["before"][k] != r["after"][k] for k in r["before"]), r


def test_the_check_above_can_fail(world: World) -> None:
    """A record that is missing, or holds other fields, is found: the expectations of one
    operation against a log the operation did not write."""
    net = new_net(world.a)
    net.member("alice")
    records = net.records()
    assert _matches(
        Record(net, "account.created", actor("operator", net.operator), None, {"code": "bob"}),
        next(r for r in records if r["action"] == "account.created"),
    ) == ["after['code'] = 'alice', not 'bob'"]
    assert _matches(
        Record(net, "network.created", "platform:nobody", None, {"name": ANY}), records[0]
    ) == [f"actor {records[0]['actor']!r}, not 'platform:nobody'"]
