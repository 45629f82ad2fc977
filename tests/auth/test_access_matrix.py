"""Who may call what: every endpoint, called by every kind of caller, against the exact set of
callers allowed. Allowed calls run on a fresh network and must succeed; refused calls run on a
shared one and must be refused with the right status (401, 403, or 404 where existence itself
is private).
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI

from tests.helpers import Api, Net, auth

ANONYMOUS, INVALID, REVOKED = "anonymous", "invalid key", "revoked key"
MEMBER, OTHER_MEMBER, PAYEE = "member", "other member", "payee member"
AUDITOR, OPERATOR, FOREIGN, PLATFORM = "auditor", "operator", "foreign operator", "platform"
ROLES = [ANONYMOUS, INVALID, REVOKED, MEMBER, PAYEE, OTHER_MEMBER, AUDITOR, OPERATOR, FOREIGN,
         PLATFORM]  # fmt: skip
READERS = {AUDITOR, OPERATOR, PLATFORM}
MEMBERS = {MEMBER, PAYEE, OTHER_MEMBER}
RUNNERS = {OPERATOR, PLATFORM}


@dataclass
class World:
    """A network where 'a' (MEMBER) paid 'b' (PAYEE) and holds a pending trade for b, b owes a
    request from a, and 'c' (OTHER_MEMBER) is party to nothing."""

    net: Net
    tokens: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


async def build(api: Api, foreign: Net) -> World:
    net = await api.network()
    for code in ("a", "b", "c", "z"):
        await api.account(net, code)
    await api.account(net, "sys", kind="system")
    world = World(net)
    world.tokens[MEMBER] = await api.member_key(net, "a")
    world.tokens[PAYEE] = await api.member_key(net, "b")
    world.tokens[OTHER_MEMBER] = await api.member_key(net, "c")
    r = await api.client.post(
        f"{net.base}/keys", json={"role": "auditor"}, headers=auth(net.operator)
    )
    world.tokens[AUDITOR] = r.json()["token"]
    world.tokens[OPERATOR] = net.operator
    world.tokens[FOREIGN] = foreign.operator
    world.tokens[PLATFORM] = api.platform
    world.tokens[ANONYMOUS] = None
    world.tokens[INVALID] = "mc_0123456789abcdef_not-the-secret"
    revoked = await api.member_key(net, "c")
    await api.client.post(
        f"{net.base}/keys/{revoked.split('_')[1]}/revoke", headers=auth(net.operator)
    )
    world.tokens[REVOKED] = revoked
    spare = await api.member_key(net, "c")
    world.ids["key"] = spare.split("_")[1]
    world.ids["transfer"] = str(uuid.uuid4())  # none was sent: resolving it is not found
    world.ids["trade"] = (await api.pay(net, "a", "b", 10)).json()["id"]
    world.ids["hold"] = (await api.pay(net, "a", "b", 5, pending=True)).json()["id"]
    r = await api.client.post(
        f"{net.base}/requests",
        json={"payer": "b", "payee": "a", "amount": 3},
        headers=auth(net.operator),
    )
    world.ids["request"] = r.json()["id"]
    # A link to a network whose deployment cannot be reached (.invalid never resolves): every
    # check of the caller happens before the call to the peer, which then fails (502
    # peer_unreachable) for allowed callers.
    r = await api.client.post(
        f"{net.base}/federation/links",
        json={
            "peer": "px",
            "peer_url": "http://px.invalid:9",
            "peer_key": {"key_id": "px.1", "public_key": _public_key()},
            "rate": {"num": 1, "den": 1},
            "credit_limit": 100,
            "balance_max": 100,
        },
        headers=auth(net.operator),
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"{net.base}/webhooks", json={"url": "https://hooks.invalid/"}, headers=auth(net.operator)
    )
    assert r.status_code == 201, r.text
    world.ids["webhook"] = r.json()["id"]
    r = await api.client.post(
        f"{net.base}/webhooks",
        json={"url": "https://hooks.invalid/a"},
        headers=auth(str(world.tokens[MEMBER])),
    )
    assert r.status_code == 201, r.text
    world.ids["member_webhook"] = r.json()["id"]
    # A membership fee of the members, charged yearly into "sys" (nothing is due during the test).
    r = await api.client.post(
        f"{net.base}/fee-rules",
        json={
            "code": "dues",
            "kind": "membership",
            "treasury": "sys",
            "amount": 1,
            "period": "year",
            "reason": "dues",
        },
        headers=auth(net.operator),
    )
    assert r.status_code == 201, r.text
    return world


def _public_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mutualcredit.federation import crypto

    return crypto.b64e(Ed25519PrivateKey.generate().public_key().public_bytes_raw())


# (method, path, body, allowed callers). Paths use {n} for the network and {trade}, {hold},
# {request}, {key} for the world's resources.
LIMITS = {"credit_limit": 50, "balance_max": None, "reason": "review"}
LINK = {
    "peer_url": "http://px.invalid:9",
    "peer_key": {"key_id": "py.1", "public_key": "@key"},
    "rate": {"num": 2, "den": 1},
    "credit_limit": 100,
    "balance_max": None,
}
LEVY = {
    "code": "levy",
    "kind": "levy",
    "treasury": "sys",
    "charge": "payer",
    "rate": {"num": 1, "den": 100},
    "reason": "fund",
}
MATRIX: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/v1/me", None, {MEMBER, PAYEE, OTHER_MEMBER, AUDITOR, OPERATOR, FOREIGN, PLATFORM}),
    (
        "POST",
        "/v1/networks",
        {"code": "@new", "name": "n", "unit_name": "u", "unit_symbol": "u", "scale": 0},
        {PLATFORM},
    ),
    ("GET", "/v1/networks", None, {PLATFORM}),
    ("GET", "{n}", None, {MEMBER, PAYEE, OTHER_MEMBER} | READERS),
    ("PATCH", "{n}", {"name": "renamed"}, RUNNERS),
    ("POST", "{n}/keys", {"role": "operator"}, RUNNERS),
    ("GET", "{n}/keys", None, READERS),
    ("POST", "{n}/keys/{key}/revoke", None, RUNNERS),
    ("POST", "{n}/accounts", {"code": "new"}, RUNNERS),
    ("GET", "{n}/accounts", None, READERS),
    ("GET", "{n}/accounts/a", None, {MEMBER} | READERS),
    ("POST", "{n}/accounts/z/suspend", None, RUNNERS),
    ("POST", "{n}/accounts/z/reactivate", None, RUNNERS),
    ("POST", "{n}/accounts/z/close", None, RUNNERS),
    ("GET", "{n}/accounts/a/entries", None, {MEMBER} | READERS),
    ("GET", "{n}/accounts/a/statement", None, {MEMBER} | READERS),
    ("GET", "{n}/accounts/a/statement.csv", None, {MEMBER} | READERS),
    ("PUT", "{n}/accounts/a/limits", LIMITS, RUNNERS),
    ("GET", "{n}/accounts/a/limits", None, {MEMBER} | READERS),
    ("GET", "{n}/accounts/a/limits/history", None, {MEMBER} | READERS),
    ("GET", "{n}/limits/history", None, READERS),
    ("POST", "{n}/limits/apply-defaults", {"reason": "policy"}, RUNNERS),
    ("POST", "{n}/trades", {"payer": "a", "payee": "c", "amount": 1}, {MEMBER} | RUNNERS),
    ("GET", "{n}/trades", None, {MEMBER, PAYEE, OTHER_MEMBER} | READERS),
    ("GET", "{n}/trades/{trade}", None, {MEMBER, PAYEE} | READERS),
    ("POST", "{n}/trades/{hold}/post", None, {MEMBER, PAYEE} | RUNNERS),
    ("POST", "{n}/trades/{hold}/void", None, {PAYEE} | RUNNERS),
    ("POST", "{n}/trades/{trade}/reverse", {"reason": "mistake"}, RUNNERS),
    ("GET", "{n}/trades.csv", None, READERS),
    ("POST", "{n}/requests", {"payer": "c", "payee": "a", "amount": 1}, {MEMBER} | RUNNERS),
    ("GET", "{n}/requests", None, {MEMBER, PAYEE, OTHER_MEMBER} | READERS),
    ("GET", "{n}/requests/{request}", None, {MEMBER, PAYEE} | READERS),
    ("POST", "{n}/requests/{request}/accept", None, {PAYEE} | RUNNERS),
    ("POST", "{n}/requests/{request}/reject", {"reason": "no"}, {PAYEE} | RUNNERS),
    ("POST", "{n}/requests/{request}/cancel", None, {MEMBER} | RUNNERS),
    ("GET", "{n}/accounts/a/approvals", None, {MEMBER} | READERS),
    ("PUT", "{n}/accounts/a/approvals/b", {"max_amount": 5}, {MEMBER} | RUNNERS),
    ("DELETE", "{n}/accounts/a/approvals/b", None, {MEMBER} | RUNNERS),
    ("POST", "{n}/fee-rules", LEVY, RUNNERS),
    ("GET", "{n}/fee-rules", None, MEMBERS | READERS),
    ("GET", "{n}/fee-rules/dues", None, MEMBERS | READERS),
    ("PATCH", "{n}/fee-rules/dues", {"description": "yearly", "reason": "audit"}, RUNNERS),
    ("GET", "{n}/fee-rules/dues/history", None, READERS),
    ("GET", "{n}/fee-rules/dues/preview", None, READERS),
    ("GET", "{n}/fee-charges", None, MEMBERS | READERS),
    ("GET", "{n}/fee-charges.csv", None, READERS),
    ("GET", "{n}/audit", None, READERS),
    ("GET", "{n}/audit/verify", None, READERS),
    ("GET", "{n}/events", None, {MEMBER, PAYEE, OTHER_MEMBER} | READERS),
    ("GET", "{n}/health", None, READERS),
    ("GET", "{n}/federation/identity", None, READERS),
    ("POST", "{n}/federation/keys/rotate", None, RUNNERS),
    ("GET", "{n}/federation/links", None, READERS),
    ("POST", "{n}/federation/links", {**LINK, "peer": "py"}, RUNNERS),
    ("GET", "{n}/federation/links/px", None, READERS),
    ("PATCH", "{n}/federation/links/px", {"default_route": False, "reason": "audit"}, RUNNERS),
    ("POST", "{n}/federation/links/px/agree", None, RUNNERS),
    ("POST", "{n}/federation/links/px/suspend", {"reason": "audit"}, RUNNERS),
    ("POST", "{n}/federation/links/px/resume", {"reason": "audit"}, RUNNERS),
    (
        "POST",
        "{n}/federation/links/px/peer-keys",
        {"key_id": "px.2", "public_key": "@key"},
        RUNNERS,
    ),
    ("POST", "{n}/federation/links/px/peer-keys/px.1/revoke", None, RUNNERS),
    ("GET", "{n}/federation/links/px/transfers", None, READERS),
    (
        "POST",
        "{n}/federation/links/px/transfers/{transfer}/resolve",
        {"outcome": "void", "reason": "audit"},
        RUNNERS,
    ),
    ("GET", "{n}/federation/links/px/statement", None, READERS),
    ("GET", "{n}/federation/links/px/reconcile", None, READERS),
    ("POST", "{n}/federation/links/px/checkpoints", None, RUNNERS),
    ("GET", "{n}/federation/links/px/checkpoints", None, READERS),
    ("POST", "{n}/federation/links/px/settlements", {"reference": "r1", "amount": 5}, RUNNERS),
    ("GET", "{n}/federation/links/px/settlements", None, READERS),
    ("POST", "{n}/federation/links/px/settlements/r1/cancel", {"reason": "audit"}, RUNNERS),
    ("POST", "{n}/webhooks", {"url": "https://hooks.invalid/a"}, MEMBERS | RUNNERS),
    ("GET", "{n}/webhooks", None, MEMBERS | READERS),
    ("GET", "{n}/webhooks/{webhook}", None, READERS),
    ("PATCH", "{n}/webhooks/{webhook}", {"description": "audit"}, RUNNERS),
    ("POST", "{n}/webhooks/{webhook}/rotate-secret", None, RUNNERS),
    ("POST", "{n}/webhooks/{webhook}/redeliveries", {"seq": 1}, RUNNERS),
    ("GET", "{n}/webhooks/{webhook}/attempts", None, READERS),
    # A member's endpoint: its member manages it, operators too; other members never see it.
    ("GET", "{n}/webhooks/{member_webhook}", None, {MEMBER} | READERS),
    ("PATCH", "{n}/webhooks/{member_webhook}", {"description": "till"}, {MEMBER} | RUNNERS),
    ("POST", "{n}/webhooks/{member_webhook}/rotate-secret", None, {MEMBER} | RUNNERS),
    ("POST", "{n}/webhooks/{member_webhook}/redeliveries", {"seq": 1}, {MEMBER} | RUNNERS),
    ("GET", "{n}/webhooks/{member_webhook}/attempts", None, {MEMBER} | READERS),
]
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
# Node-to-node endpoints: authenticated by signatures, not keys (tests/federation/).
PEER = {
    ("GET", "/federation/v1/networks/{network}/descriptor"),
    ("POST", "/federation/v1/networks/{network}/link"),
    ("POST", "/federation/v1/networks/{network}/link/status"),
    ("POST", "/federation/v1/networks/{network}/transfers"),
    ("GET", "/federation/v1/networks/{network}/statement"),
    ("POST", "/federation/v1/networks/{network}/checkpoints"),
    ("POST", "/federation/v1/networks/{network}/keys"),
}
# An allowed caller passes every permission check; these then answer for other reasons (the
# link's peer is not running, the link was never agreed, there is nothing to settle or cancel).
ALLOWED_REFUSALS = {
    "{n}/federation/links/px/agree": "peer_unreachable",
    "{n}/federation/links/px/reconcile": "peer_unreachable",
    "{n}/federation/links/px/checkpoints": "peer_unreachable",
    "{n}/federation/links/px/resume": "link_not_active",
    "{n}/federation/links/px/settlements": "settlement_invalid",
    "{n}/federation/links/px/settlements/r1/cancel": "settlement_not_found",
    "{n}/federation/links/px/transfers/{transfer}/resolve": "transfer_not_found",
    # Seq 1 is the network's creation, which is no event.
    "{n}/webhooks/{webhook}/redeliveries": "event_not_found",
    "{n}/webhooks/{member_webhook}/redeliveries": "event_not_found",
}


def _template(path: str) -> str:
    """The app's route pattern a matrix path stands for."""
    parts = []
    for part in path.replace("{n}", "/v1/networks/{network}").split("/"):
        parts.append(
            {
                "{trade}": "{trade_id}",
                "{hold}": "{trade_id}",
                "{request}": "{request_id}",
                "{key}": "{key_id}",
                "{transfer}": "{transfer_id}",
                "{member_webhook}": "{webhook}",
            }.get(part, part)
        )
    pattern = "/".join(parts)
    for name, param in (
        ("/accounts/", "{account}"),
        ("/approvals/", "{payee}"),
        ("/links/", "{peer}"),
        ("/peer-keys/", "{key_id}"),
        ("/settlements/", "{reference}"),
        ("/fee-rules/", "{code}"),
    ):
        head, sep, tail = pattern.partition(name)
        if sep and tail and not tail.startswith("{"):
            rest = tail.split("/", 1)
            pattern = head + sep + param + ("/" + rest[1] if len(rest) > 1 else "")
    return pattern


def test_the_matrix_covers_every_endpoint(app: FastAPI) -> None:
    # Every operation the app serves is in its OpenAPI document (none is hidden from it).
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    covered = {(method, _template(path)) for method, path, _, _ in MATRIX} | PUBLIC | PEER
    assert routes == covered, {"uncovered": routes - covered, "unknown": covered - routes}


def _url(path: str, world: World) -> str:
    url = path.replace("{n}", world.net.base)
    for name, value in world.ids.items():
        url = url.replace("{" + name + "}", value)
    return url


def _body(body: Any) -> Any:
    if isinstance(body, dict) and body.get("code") == "@new":
        return {**body, "code": f"m-{uuid.uuid4().hex[:10]}"}
    if isinstance(body, dict):
        return {k: _public_key() if v == "@key" else _body(v) for k, v in body.items()}
    return body


async def _call(api: Api, world: World, role: str, method: str, path: str, body: Any) -> Any:
    token = world.tokens[role]
    headers = auth(token) if token else {}
    if method == "POST" and path.endswith("/trades"):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return await api.client.request(method, _url(path, world), json=_body(body), headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), MATRIX, ids=lambda v: str(v))
async def test_exactly_the_allowed_callers_may_call(
    api: Api, method: str, path: str, body: Any, allowed: set[str]
) -> None:
    foreign = await api.network()
    shared = await build(api, foreign)
    for role in ROLES:
        if role in allowed:
            world = await build(api, foreign)  # a fresh world: an allowed write changes it
            r = await _call(api, world, role, method, path, body)
            refusal = ALLOWED_REFUSALS.get(path)
            assert r.status_code < 300 or (refusal is not None and r.json()["code"] == refusal), (
                role,
                r.status_code,
                r.text,
            )
            continue
        r = await _call(api, shared, role, method, path, body)
        problem = r.json()
        if role in (ANONYMOUS, INVALID, REVOKED):
            assert (r.status_code, problem["code"]) == (401, "unauthorized"), (role, r.text)
        elif role == FOREIGN and path.startswith("{n}"):
            assert (r.status_code, problem["code"]) == (404, "network_not_found"), r.text
        elif r.status_code == 404:
            # Existence is private: another member's trade, request or webhook endpoint (or
            # an operator's endpoint, to a member) is simply not there.
            codes = {"trade_not_found", "request_not_found", "webhook_not_found"}
            assert problem["code"] in codes, (role, r.text)
        else:
            assert (r.status_code, problem["code"]) == (403, "forbidden"), (role, r.text)
