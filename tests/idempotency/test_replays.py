"""A retry with the same Idempotency-Key gets the original answer, whatever happened meanwhile.

Every idempotent write of the OpenAPI document (every operation that takes an Idempotency-Key)
is made once, successfully and, where the ledger can refuse it, refused. Then the world moves
on: the short expiries the writes named pass, every account's limits are raised and every
member account is suspended. Then each write is sent again with its key and its body: it must
get the first answer, status and body alike (a refusal stays the same refusal, a success the
same success), marked `Idempotent-Replayed: true`. An idempotent operation added later without
a scenario here fails the completeness check.
"""

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from tests.helpers import Api, Net, auth

# How far ahead the writes below set their expiries: far enough that every first request is
# sent before its expiry, however slow the machine (all are built, then all sent); the test
# waits past the latest of them before retrying.
SOON = timedelta(seconds=15)
_LATEST: list[datetime] = []
# The parts of a first answer that a replay does not repeat: a new key's token is shown once.
SECRET_FIELDS = {"token", "secret"}


@dataclass
class Call:
    """One write as a client sends it, and what it answered the first time."""

    operation: tuple[str, str]
    method: str
    url: str
    body: Any
    token: str
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    first: httpx.Response | None = None

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        headers = {**auth(self.token), "Idempotency-Key": self.key}
        return await client.request(self.method, self.url, json=self.body, headers=headers)


def _soon() -> str:
    moment = datetime.now(UTC) + SOON
    _LATEST.append(moment)
    return moment.isoformat()


def _peer_key() -> dict[str, str]:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"key_id": "k1", "public_key": base64.urlsafe_b64encode(raw).decode().rstrip("=")}


class World:
    """Networks of the test, each with two members (alice owes nothing yet, bob neither)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.nets: list[Net] = []

    async def net(self) -> Net:
        net = await self.api.network()
        await self.api.account(net, "alice", credit_limit=1000)
        await self.api.account(net, "bob", credit_limit=1000)
        self.nets.append(net)
        return net

    async def ok(self, net: Net, method: str, path: str, body: Any = None) -> dict[str, Any]:
        r = await self.api.client.request(
            method, f"{net.base}{path}", json=body, headers=auth(net.operator)
        )
        assert r.status_code in (200, 201), r.text
        result: dict[str, Any] = r.json()
        return result

    async def hold(self, net: Net, amount: int = 10, expires_at: str | None = None) -> str:
        r = await self.api.pay(net, "alice", "bob", amount, pending=True, expires_at=expires_at)
        assert r.status_code == 201, r.text
        trade_id: str = r.json()["id"]
        return trade_id

    async def request(self, net: Net, amount: int = 10) -> str:
        body = {"payer": "alice", "payee": "bob", "amount": amount}
        return str((await self.ok(net, "POST", "/requests", body))["id"])

    async def link(self, net: Net) -> str:
        peer = f"peer-{uuid.uuid4().hex[:8]}"
        body = {
            "peer": peer,
            "peer_url": "https://peer.example",
            "peer_key": _peer_key(),
            "rate": {"num": 1, "den": 1},
            "credit_limit": 1000,
            "balance_max": 1000,
        }
        await self.ok(net, "POST", "/federation/links", body)
        return peer

    async def move_on(self) -> None:
        """Time passes (every expiry set above), limits rise, members are suspended."""
        latest = max(_LATEST, default=datetime.now(UTC))
        await asyncio.sleep(max(0.0, (latest - datetime.now(UTC)).total_seconds()) + 0.5)
        for net in self.nets:
            r = await self.api.client.get(
                f"{net.base}/accounts", params={"limit": 500}, headers=auth(net.operator)
            )
            for account in r.json()["items"]:
                code = account["code"]
                limits = {"credit_limit": 10**9, "balance_max": None, "reason": "moving on"}
                await self.api.client.put(
                    f"{net.base}/accounts/{code}/limits", json=limits, headers=auth(net.operator)
                )
                if account["kind"] == "member" and account["status"] == "active":
                    await self.api.client.post(
                        f"{net.base}/accounts/{code}/suspend",
                        json={"reason": "moving on"},
                        headers=auth(net.operator),
                    )


Scenario = Callable[[World], Awaitable[Call]]
NETWORK = "/v1/networks/{network}"


def _call(net: Net, method: str, template: str, path: str, body: Any = None) -> Call:
    return Call((method, NETWORK + template), method, f"{net.base}{path}", body, net.operator)


async def create_network(w: World) -> Call:
    body = {
        "code": f"net-{uuid.uuid4().hex[:10]}",
        "name": "Replayed",
        "unit_name": "hour",
        "unit_symbol": "h",
        "scale": 2,
    }
    return Call(("POST", "/v1/networks"), "POST", "/v1/networks", body, w.api.platform)


async def create_network_taken(w: World) -> Call:
    net = await w.net()
    body = {"code": net.code, "name": "Again", "unit_name": "h", "unit_symbol": "h", "scale": 2}
    return Call(("POST", "/v1/networks"), "POST", "/v1/networks", body, w.api.platform)


async def update_network(w: World) -> Call:
    net = await w.net()
    return _call(net, "PATCH", "", "", {"name": "Renamed", "default_credit_limit": 5})


async def open_account(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/accounts", "/accounts", {"code": "carol", "credit_limit": 7})


async def open_account_taken(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/accounts", "/accounts", {"code": "alice"})


async def close_account(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/accounts/{account}/close", "/accounts/bob/close", {})


async def close_account_not_empty(w: World) -> Call:
    net = await w.net()
    assert (await w.api.pay(net, "alice", "bob", 5)).status_code == 201
    return _call(net, "POST", "/accounts/{account}/close", "/accounts/bob/close", {})


async def set_limits_until(w: World) -> Call:
    net = await w.net()
    body = {"credit_limit": 3000, "balance_max": 9000, "reason": "season", "until": _soon()}
    return _call(net, "PUT", "/accounts/{account}/limits", "/accounts/alice/limits", body)


async def suspend(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/accounts/{account}/suspend", "/accounts/alice/suspend", {})


async def reactivate(w: World) -> Call:
    net = await w.net()
    await w.ok(net, "POST", "/accounts/alice/suspend", {"reason": "first"})
    return _call(net, "POST", "/accounts/{account}/reactivate", "/accounts/alice/reactivate", {})


async def create_key(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/keys", "/keys", {"role": "member", "account": "alice"})


async def create_key_no_account(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/keys", "/keys", {"role": "member", "account": "nobody"})


async def apply_defaults(w: World) -> Call:
    net = await w.net()
    body = {"reason": "new defaults", "dry_run": False}
    return _call(net, "POST", "/limits/apply-defaults", "/limits/apply-defaults", body)


async def create_request(w: World) -> Call:
    net = await w.net()
    body = {"payer": "alice", "payee": "bob", "amount": 10, "expires_at": _soon()}
    return _call(net, "POST", "/requests", "/requests", body)


async def accept_request(w: World) -> Call:
    net = await w.net()
    rid = await w.request(net)
    return _call(net, "POST", "/requests/{request_id}/accept", f"/requests/{rid}/accept")


async def accept_request_beyond_limit(w: World) -> Call:
    net = await w.net()
    rid = await w.request(net, amount=5000)
    return _call(net, "POST", "/requests/{request_id}/accept", f"/requests/{rid}/accept")


async def cancel_request(w: World) -> Call:
    net = await w.net()
    rid = await w.request(net)
    return _call(net, "POST", "/requests/{request_id}/cancel", f"/requests/{rid}/cancel", {})


async def reject_request(w: World) -> Call:
    net = await w.net()
    rid = await w.request(net)
    body = {"reason": "not ours"}
    return _call(net, "POST", "/requests/{request_id}/reject", f"/requests/{rid}/reject", body)


async def reject_request_answered(w: World) -> Call:
    net = await w.net()
    rid = await w.request(net)
    await w.ok(net, "POST", f"/requests/{rid}/cancel", {})
    body = {"reason": "too late"}
    return _call(net, "POST", "/requests/{request_id}/reject", f"/requests/{rid}/reject", body)


async def pay(w: World) -> Call:
    net = await w.net()
    return _call(net, "POST", "/trades", "/trades", {"payer": "alice", "payee": "bob", "amount": 9})


async def hold_expiring(w: World) -> Call:
    net = await w.net()
    body = {"payer": "alice", "payee": "bob", "amount": 9, "pending": True, "expires_at": _soon()}
    return _call(net, "POST", "/trades", "/trades", body)


async def pay_beyond_limit(w: World) -> Call:
    net = await w.net()
    body = {"payer": "alice", "payee": "bob", "amount": 5000}
    return _call(net, "POST", "/trades", "/trades", body)


async def post_hold(w: World) -> Call:
    net = await w.net()
    tid = await w.hold(net, expires_at=_soon())
    return _call(net, "POST", "/trades/{trade_id}/post", f"/trades/{tid}/post", {"amount": 4})


async def post_hold_too_much(w: World) -> Call:
    net = await w.net()
    tid = await w.hold(net, expires_at=_soon())
    return _call(net, "POST", "/trades/{trade_id}/post", f"/trades/{tid}/post", {"amount": 99})


async def void_hold(w: World) -> Call:
    net = await w.net()
    tid = await w.hold(net, expires_at=_soon())
    return _call(net, "POST", "/trades/{trade_id}/void", f"/trades/{tid}/void", {})


async def create_link(w: World) -> Call:
    net = await w.net()
    body = {
        "peer": "riverside",
        "peer_url": "https://riverside.example",
        "peer_key": _peer_key(),
        "rate": {"num": 1, "den": 2},
        "credit_limit": 500,
        "balance_max": 500,
    }
    return _call(net, "POST", "/federation/links", "/federation/links", body)


async def update_link(w: World) -> Call:
    net = await w.net()
    peer = await w.link(net)
    body = {"rate": {"num": 2, "den": 3}, "reason": "new rate"}
    template = "/federation/links/{peer}"
    return _call(net, "PATCH", template, f"/federation/links/{peer}", body)


async def suspend_link(w: World) -> Call:
    net = await w.net()
    peer = await w.link(net)
    template = "/federation/links/{peer}/suspend"
    return _call(net, "POST", template, f"/federation/links/{peer}/suspend", {"reason": "pause"})


async def resume_link(w: World) -> Call:
    net = await w.net()
    peer = await w.link(net)
    template = "/federation/links/{peer}/resume"
    return _call(net, "POST", template, f"/federation/links/{peer}/resume", {"reason": "go"})


async def record_settlement(w: World) -> Call:
    net = await w.net()
    peer = await w.link(net)
    template = "/federation/links/{peer}/settlements"
    body = {"reference": "bank-1", "amount": 10}
    return _call(net, "POST", template, f"/federation/links/{peer}/settlements", body)


async def cancel_settlement(w: World) -> Call:
    """Refused: nothing was recorded under the reference (404 settlement_not_found)."""
    net = await w.net()
    peer = await w.link(net)
    template = "/federation/links/{peer}/settlements/{reference}/cancel"
    path = f"/federation/links/{peer}/settlements/bank-1/cancel"
    return _call(net, "POST", template, path, {"reason": "recorded twice"})


async def resolve_unknown_transfer(w: World) -> Call:
    net = await w.net()
    peer = await w.link(net)
    template = "/federation/links/{peer}/transfers/{transfer_id}/resolve"
    path = f"/federation/links/{peer}/transfers/{uuid.uuid4()}/resolve"
    return _call(net, "POST", template, path, {"outcome": "void", "reason": "gone"})


async def _webhook(net: Net, api: Api) -> str:
    r = await api.client.post(
        f"{net.base}/webhooks",
        json={"url": "https://hooks.example/in"},
        headers={"Authorization": f"Bearer {net.operator}"},
    )
    assert r.status_code == 201, r.text
    webhook: str = r.json()["id"]
    return webhook


async def create_webhook(w: World) -> Call:
    net = await w.net()
    body = {"url": "https://hooks.example/in", "event_types": ["trade.posted"]}
    return _call(net, "POST", "/webhooks", "/webhooks", body)


async def update_webhook(w: World) -> Call:
    net = await w.net()
    webhook = await _webhook(net, w.api)
    body = {"enabled": False, "description": "paused"}
    return _call(net, "PATCH", "/webhooks/{webhook}", f"/webhooks/{webhook}", body)


async def rotate_webhook_secret(w: World) -> Call:
    net = await w.net()
    webhook = await _webhook(net, w.api)
    template = "/webhooks/{webhook}/rotate-secret"
    return _call(net, "POST", template, f"/webhooks/{webhook}/rotate-secret")


async def redeliver_no_event(w: World) -> Call:
    """Refused: seq 1 is the network's creation, which is no event (404 event_not_found)."""
    net = await w.net()
    webhook = await _webhook(net, w.api)
    template = "/webhooks/{webhook}/redeliveries"
    return _call(net, "POST", template, f"/webhooks/{webhook}/redeliveries", {"seq": 1})


def _levy(**fields: Any) -> dict[str, Any]:
    return {
        "code": "levy",
        "kind": "levy",
        "treasury": "treasury",
        "charge": "payer",
        "rate": {"num": 1, "den": 100},
        "reason": "the network pays for itself",
        **fields,
    }


async def _treasury(w: World) -> Net:
    net = await w.net()
    await w.api.account(net, "treasury", kind="system")
    return net


async def create_fee_rule(w: World) -> Call:
    """Its start is in the past when it is retried: the retry is answered before that check."""
    net = await _treasury(w)
    return _call(net, "POST", "/fee-rules", "/fee-rules", _levy(starts_at=_soon()))


async def create_fee_rule_overlap(w: World) -> Call:
    net = await _treasury(w)
    await w.ok(net, "POST", "/fee-rules", _levy())
    return _call(net, "POST", "/fee-rules", "/fee-rules", _levy(code="again", charge="both"))


async def update_fee_rule(w: World) -> Call:
    """Its end is in the past when it is retried (the rule has ended by then)."""
    net = await _treasury(w)
    await w.ok(net, "POST", "/fee-rules", _levy())
    body = {"ends_at": _soon(), "maximum": 50, "reason": "a season"}
    return _call(net, "PATCH", "/fee-rules/{code}", "/fee-rules/levy", body)


SCENARIOS: list[Scenario] = [
    create_network,
    create_network_taken,
    update_network,
    open_account,
    open_account_taken,
    close_account,
    close_account_not_empty,
    set_limits_until,
    suspend,
    reactivate,
    create_key,
    create_key_no_account,
    apply_defaults,
    create_request,
    accept_request,
    accept_request_beyond_limit,
    cancel_request,
    reject_request,
    reject_request_answered,
    pay,
    hold_expiring,
    pay_beyond_limit,
    post_hold,
    post_hold_too_much,
    void_hold,
    create_link,
    update_link,
    suspend_link,
    resume_link,
    record_settlement,
    cancel_settlement,
    resolve_unknown_transfer,
    create_webhook,
    update_webhook,
    rotate_webhook_secret,
    redeliver_no_event,
    create_fee_rule,
    create_fee_rule_overlap,
    update_fee_rule,
]


def _idempotent_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }


async def test_every_idempotent_write_replays_its_first_answer(app: FastAPI, api: Api) -> None:
    world = World(api)
    calls = [await scenario(world) for scenario in SCENARIOS]
    assert {c.operation for c in calls} == _idempotent_operations(app)

    for call in calls:
        call.first = await call.send(api.client)
        assert call.first.status_code < 500, call.first.text
        assert "idempotent-replayed" not in call.first.headers
    refused = [c for c in calls if c.first is not None and c.first.status_code >= 400]
    # The refusals the scenarios meant to provoke (a code taken, an account not empty, a limit,
    # a request answered, a hold posted beyond its amount, a link that is not active...).
    assert len(refused) >= 9, [(c.operation, c.first and c.first.text) for c in refused]

    await world.move_on()

    for call in calls:
        assert call.first is not None
        again = await call.send(api.client)
        where = (call.operation, call.first.text, again.text)
        assert again.status_code == call.first.status_code, where
        assert again.headers.get("idempotent-replayed") == "true", where
        assert again.headers["content-type"] == call.first.headers["content-type"], where
        first, replayed = call.first.json(), again.json()
        for name in SECRET_FIELDS & first.keys():
            assert replayed[name] is None, where
            first[name] = None
        assert replayed == first, where
