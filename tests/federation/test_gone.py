"""A peer that is gone, across separate service processes, each with its own database.

Two linked networks (alpha, bravo) and a hub route (alpha -> hub -> charlie). A peer's definite
refusal ends delivery at once and names the network that refused, even behind a hub; a peer gone
for good leaves a hold that an operator resolves after its expiry, on the record; a peer that
comes back having decided otherwise is shown as a dispute, never reconciled away; each link's
health says how its peer answers; and suspending a link tells the peer."""

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mutualcredit.federation import crypto, protocol
from tests.federation.checks import settled, signed_post, wait
from tests.federation.cluster import Cluster, Node, free_port

TTL = 8


@pytest.fixture(scope="module")
def cluster(server_url: str) -> Iterator[Cluster]:
    c = Cluster(
        server_url,
        Path(tempfile.mkdtemp(prefix="mc-gone-")),
        MUTUALCREDIT_FEDERATION_TTL_SECONDS=str(TTL),
        MUTUALCREDIT_FEDERATION_HOP_MARGIN_SECONDS="2",
    )
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        hub, charlie = c.add("hub"), c.add("charlie")
        c.connect(alpha, bravo, caps=100_000)
        c.connect(alpha, hub, caps=100_000, a_default_route=True)
        c.connect(charlie, hub, caps=100_000)
        alpha.member("ann")
        bravo.member("bob")
        charlie.member("carl")
        yield c
    finally:
        c.close()


def _link(node: Node, peer: str) -> dict[str, Any]:
    r = node.request("GET", f"/federation/links/{peer}", node.operator)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _point(node: Node, peer: str, url: str) -> None:
    """The operator points the link at another URL (a peer gone from where it was)."""
    r = node.request(
        "PATCH",
        f"/federation/links/{peer}",
        node.operator,
        json={"peer_url": url, "reason": "test: the peer moves"},
    )
    assert r.status_code == 200, r.text


def _transfer(node: Node, transfer_id: str) -> dict[str, Any]:
    rows = asyncio.run(
        node.fetch(
            "SELECT * FROM transfers WHERE transfer_id = $1 AND direction = 'out'",
            uuid.UUID(transfer_id),
        )
    )
    assert len(rows) == 1
    row = dict(rows[0])
    for column in ("refusal_detail", "receipt"):  # jsonb: text, as asyncpg reads it
        row[column] = json.loads(row[column]) if row[column] is not None else None
    return row


def _signer(node: Node) -> crypto.Signer:
    """The node's own signing key, to send by hand what its outbox would send."""
    key = asyncio.run(
        node.fetch("SELECT key_id, sealed_private_key FROM node_keys WHERE status = 'active'")
    )[0]
    secret = crypto.b64d(node.settings["MUTUALCREDIT_SECRET_KEY"])
    return crypto.Signer(
        node.name, key["key_id"], crypto.unseal(key["sealed_private_key"], key["key_id"], secret)
    )


def _resolve(
    node: Node, peer: str, transfer_id: str, outcome: str, reason: str, key: str | None = None
) -> httpx.Response:
    return httpx.post(
        f"{node.base}/federation/links/{peer}/transfers/{transfer_id}/resolve",
        json={"outcome": outcome, "reason": reason},
        headers={
            "Authorization": f"Bearer {node.operator}",
            "Idempotency-Key": key or str(uuid.uuid4()),
        },
        timeout=30,
    )


def _metric(node: Node, name: str, peer: str) -> float:
    text = httpx.get(f"{node.url}/metrics", timeout=10).text
    prefix = f'{name}{{network="{node.name}",peer="{peer}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"{prefix} not in /metrics"
    return float(lines[0][len(prefix) :])


def _wait_expired(transfer: dict[str, Any]) -> None:
    left = (transfer["expires_at"] - datetime.now(transfer["expires_at"].tzinfo)).total_seconds()
    time.sleep(max(0.0, left) + 0.5)


def test_a_definite_refusal_ends_delivery_at_once(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    before = alpha.balance("ann")
    _point(alpha, "bravo", f"http://127.0.0.1:{free_port()}")
    try:
        r = alpha.pay("ann", "bravo/bob", 25)
        assert r.status_code == 202, r.text
        transfer_id = r.json()["transfer"]["transfer_id"]
        # Another message under the same transfer id reaches bravo first (signed by alpha's
        # key), which refuses it: bravo's record of the id is not this transfer.
        row = _transfer(alpha, transfer_id)
        other = {**protocol.message(row), "amount_received": row["amount_received"] + 1}
        answer = signed_post(bravo, _signer(alpha), "/transfers", crypto.canonical(other))
        assert answer.json()["code"] == "amount_mismatch", answer.text
    finally:
        _point(alpha, "bravo", bravo.url)
    # bravo answers the real transfer, signed, with 409 transfer_conflict: its final word.
    # Delivery ends at the first answer, long before the expiry, and the hold is voided.
    wait(lambda: _transfer(alpha, transfer_id)["status"] == "refused", TTL / 2)
    row = _transfer(alpha, transfer_id)
    assert row["resolved_at"] < row["expires_at"]
    assert row["refusal_code"] == "transfer_conflict"
    assert row["refusal_detail"]["refused_by"] == "bravo"
    attempts = row["attempts"]
    time.sleep(2)
    assert _transfer(alpha, transfer_id)["attempts"] == attempts  # not sent again
    assert alpha.trade(r.json()["id"])["status"] == "voided"
    assert alpha.balance("ann") == before
    settled(alpha, bravo)


def test_refused_by_names_the_destination_behind_a_hub(cluster: Cluster) -> None:
    alpha = cluster.nodes["alpha"]
    r = alpha.pay("ann", "charlie/nobody", 30)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert (problem["code"], problem["remote_code"], problem["refused_by"]) == (
        "transfer_refused",
        "account_not_found",
        "charlie",
    )
    assert alpha.trade(problem["trade_id"])["status"] == "voided"
    settled(alpha, cluster.nodes["hub"], cluster.nodes["charlie"])


def test_suspending_a_link_tells_the_peer(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    r = bravo.request(
        "POST", "/federation/links/alpha/suspend", bravo.operator, json={"reason": "audit"}
    )
    assert r.status_code == 200, r.text
    wait(lambda: _link(alpha, "bravo")["peer_status"] == "suspended", 10)
    wait(lambda: _link(bravo, "alpha")["peer_told"] is True, 5)
    # alpha sends nothing over a link its peer suspended: refused here, at once.
    r = alpha.pay("ann", "bravo/bob", 5)
    assert (r.status_code, r.json()["code"]) == (409, "link_not_active"), r.text
    r = bravo.request(
        "POST", "/federation/links/alpha/resume", bravo.operator, json={"reason": "done"}
    )
    assert r.status_code == 200, r.text
    wait(lambda: _link(alpha, "bravo")["peer_status"] == "active", 10)
    wait(lambda: _link(bravo, "alpha")["peer_told"] is True, 5)
    assert alpha.pay("ann", "bravo/bob", 5).status_code == 201
    settled(alpha, bravo)


def test_a_peer_gone_for_good_is_resolved_by_an_operator_after_the_expiry(
    cluster: Cluster,
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    before = alpha.balance("ann")
    bravo.kill()
    try:
        trade_key = str(uuid.uuid4())
        r = alpha.pay("ann", "bravo/bob", 40, key=trade_key)
        assert r.status_code == 202, r.text
        trade_id, transfer_id = r.json()["id"], r.json()["transfer"]["transfer_id"]
        # The link's health shows the peer gone and what waits for it, here and in /metrics.
        wait(lambda: _link(alpha, "bravo")["health"]["consecutive_failures"] >= 2, 10)
        health = _link(alpha, "bravo")["health"]
        assert health["transfers_waiting"] == 1
        assert health["oldest_waiting_seconds"] > 0
        wait(
            lambda: (
                _metric(alpha, "mutualcredit_federation_link_consecutive_failures", "bravo") >= 2
            ),
            10,
        )
        assert _metric(alpha, "mutualcredit_federation_link_transfers_waiting", "bravo") == 1

        # Before the expiry bravo may still decide: no operator may.
        early = _resolve(alpha, "bravo", transfer_id, "void", "too early")
        assert (early.status_code, early.json()["code"]) == (409, "transfer_not_expired")
        _wait_expired(_transfer(alpha, transfer_id))
        assert alpha.trade(trade_id)["status"] == "pending"  # the outbox alone never ends it

        key = str(uuid.uuid4())
        resolved = _resolve(alpha, "bravo", transfer_id, "void", "bravo is gone for good", key)
        assert resolved.status_code == 200, resolved.text
        view = resolved.json()
        assert (view["status"], view["resolution"]) == ("resolved", "void")
        assert view["resolution_reason"] == "bravo is gone for good"
        # The payer's credit and the link's cap are released.
        assert alpha.trade(trade_id)["status"] == "voided"
        assert alpha.balance("ann") == before
        for account in ("ann", "link.bravo"):
            r = alpha.request("GET", f"/accounts/{account}", alpha.operator)
            assert (r.json()["pending_debits"], r.json()["pending_credits"]) == (0, 0)
        # A retry of the same request answers the same; a new one is refused.
        again = _resolve(alpha, "bravo", transfer_id, "void", "bravo is gone for good", key)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == view
        # The member's retry of its trade learns it as a refusal, by this network's operator.
        retry = alpha.pay("ann", "bravo/bob", 40, key=trade_key)
        problem = retry.json()
        assert (retry.status_code, problem["code"]) == (409, "transfer_refused"), retry.text
        assert (problem["refused_by"], problem["remote_code"]) == ("alpha", "operator_resolved")
        assert problem["remote_detail"] == {"reason": "bravo is gone for good"}
        assert retry.headers["Idempotent-Replayed"] == "true"
        twice = _resolve(alpha, "bravo", transfer_id, "post", "changed my mind")
        assert (twice.status_code, twice.json()["code"]) == (409, "transfer_not_in_flight")
        audit = alpha.request(
            "GET", "/audit", alpha.operator, params={"action": "transfer.resolved"}
        ).json()["items"]
        assert [(a["reason"], a["after"]["resolution"]) for a in audit] == [
            ("bravo is gone for good", "void")
        ]
        assert audit[0]["actor"].startswith("operator:")
    finally:
        bravo.start()
    # bravo comes back: it never saw the transfer, so it refuses it as expired, which confirms
    # the resolution; contact resets the failures.
    wait(lambda: _transfer(alpha, transfer_id)["status"] == "refused", 15)
    assert _transfer(alpha, transfer_id)["refusal_code"] == "transfer_expired"
    health = _link(alpha, "bravo")["health"]
    assert health["consecutive_failures"] == 0
    assert health["last_contact_at"] is not None
    assert health["transfers_waiting"] == 0
    wait(
        lambda: _metric(alpha, "mutualcredit_federation_link_consecutive_failures", "bravo") == 0,
        10,
    )
    settled(alpha, bravo)


def test_a_hub_resolves_its_leg_and_the_origin_learns_it_by_the_protocol(
    cluster: Cluster,
) -> None:
    alpha, hub, charlie = cluster.nodes["alpha"], cluster.nodes["hub"], cluster.nodes["charlie"]
    before = alpha.balance("ann")
    charlie.kill()
    try:
        r = alpha.pay("ann", "charlie/carl", 70)
        assert r.status_code == 202, r.text
        trade_id, transfer_id = r.json()["id"], r.json()["transfer"]["transfer_id"]
        onward = _transfer(hub, transfer_id)  # the hub's hold toward charlie, in its outbox
        _wait_expired(onward)
        resolved = _resolve(hub, "charlie", transfer_id, "void", "charlie is gone")
        assert resolved.status_code == 200, resolved.text
        # Both of the hub's sides are decided: its hold is released, and alpha, asking again,
        # learns the refusal and voids its own hold.
        wait(lambda: alpha.trade(trade_id)["status"] == "voided", 15)
        transfer = alpha.trade(trade_id)["transfer"]
        assert (transfer["refusal_code"], transfer["refusal_detail"]["refused_by"]) == (
            "operator_resolved",
            "hub",
        )
        assert alpha.balance("ann") == before
        r = hub.request("GET", "/accounts/link.alpha", hub.operator)
        assert (r.json()["pending_debits"], r.json()["pending_credits"]) == (0, 0)
    finally:
        charlie.start()
    # charlie, back, refuses the expired transfer: the hub's resolution is confirmed.
    wait(lambda: _transfer(hub, transfer_id)["status"] == "refused", 15)
    settled(alpha, hub, charlie)


def test_a_transfer_resolved_as_posted_is_in_no_checkpoint_until_the_peer_confirms_it(
    cluster: Cluster,
) -> None:
    """Posted by alpha's operator, with no word of bravo: alpha's ledger holds it and no chain
    does, so alpha signs no checkpoint; once bravo's receipt confirms it, one is signed."""
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    _point(alpha, "bravo", f"http://127.0.0.1:{free_port()}")
    try:
        r = alpha.pay("ann", "bravo/bob", 30)
        assert r.status_code == 202, r.text
        transfer_id = r.json()["transfer"]["transfer_id"]
        # bravo did get it (alpha's answer was lost) and booked it.
        row = _transfer(alpha, transfer_id)
        body = crypto.canonical(protocol.message(row))
        assert signed_post(bravo, _signer(alpha), "/transfers", body).json()["status"] == (
            "accepted"
        )
        _wait_expired(row)
        resolved = _resolve(alpha, "bravo", transfer_id, "post", "bravo's member confirmed it")
        assert resolved.status_code == 200, resolved.text
        r = alpha.request("POST", "/federation/links/bravo/checkpoints", alpha.operator)
        problem = r.json()
        assert (r.status_code, problem["code"], problem["side"]) == (
            409,
            "link_ledger_mismatch",
            "alpha",
        ), r.text
        assert {(d["account"], d["figure"]) for d in problem["differences"]} == {
            ("link.bravo", "balance")
        }
    finally:
        _point(alpha, "bravo", bravo.url)
    wait(lambda: _transfer(alpha, transfer_id)["status"] == "accepted", 15)
    r = alpha.request("POST", "/federation/links/bravo/checkpoints", alpha.operator)
    assert r.status_code == 201, r.text
    settled(alpha, bravo)


def test_a_peer_back_with_another_decision_is_a_dispute_not_a_silent_fix(
    cluster: Cluster,
) -> None:
    """Last in the module: it leaves the link between alpha and bravo disputed."""
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    ann, bob = alpha.balance("ann"), bravo.balance("bob")
    _point(alpha, "bravo", f"http://127.0.0.1:{free_port()}")
    try:
        r = alpha.pay("ann", "bravo/bob", 60)
        assert r.status_code == 202, r.text
        trade_id, transfer_id = r.json()["id"], r.json()["transfer"]["transfer_id"]
        # The transfer did reach bravo (alpha's answer was lost): bravo accepted it.
        row = _transfer(alpha, transfer_id)
        body = crypto.canonical(protocol.message(row))
        assert signed_post(bravo, _signer(alpha), "/transfers", body).json()["status"] == (
            "accepted"
        )
        _wait_expired(row)
        resolved = _resolve(alpha, "bravo", transfer_id, "void", "bravo never answered")
        assert resolved.status_code == 200, resolved.text
    finally:
        _point(alpha, "bravo", bravo.url)
    # bravo's word contradicts the resolution: the transfer is disputed, with bravo's receipt,
    # and nothing moved by itself: alpha's trade stays voided, bob keeps what bravo booked.
    wait(lambda: _transfer(alpha, transfer_id)["status"] == "disputed", 15)
    disputed = _transfer(alpha, transfer_id)
    assert disputed["resolution"] == "void"
    assert disputed["receipt"]["status"] == "accepted"
    assert alpha.trade(trade_id)["status"] == "voided"
    assert (alpha.balance("ann"), bravo.balance("bob")) == (ann, bob + 60)
    view = [
        t
        for t in alpha.request(
            "GET",
            "/federation/links/bravo/transfers",
            alpha.operator,
            params={"status": "disputed"},
        ).json()
        if t["transfer_id"] == transfer_id
    ]
    assert [(t["status"], t["peer_decision"]) for t in view] == [("disputed", "accepted")]
    assert _link(alpha, "bravo")["health"]["transfers_disputed"] == 1
    report = alpha.reconcile(bravo)
    assert not report["agreed"]
    kinds = {(d["kind"], d.get("transfer_id")) for d in report["differences"]}
    assert ("disputed", transfer_id) in kinds
    # bravo's chain has it, alpha's does not: shown entry by entry too.
    assert any(
        d["kind"] == "chain" and d["ours"] is None and d["theirs"]["transfer_id"] == transfer_id
        for d in report["differences"]
    )
    assert not bravo.reconcile(alpha)["agreed"]
