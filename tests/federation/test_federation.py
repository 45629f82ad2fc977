"""Federation across separate service processes, each with its own database.

Two linked networks (alpha, bravo) and a hub route (alpha -> hub -> charlie). After every
scenario, `settled` checks what the issue asks: every network's balances sum to zero, the link
accounts mirror each other (exactly, or by the tracked remainder), every trade acknowledged to a
client is booked exactly once on both sides, and no hold outlives its expiry."""

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.federation.checks import settled, wait
from tests.federation.cluster import Cluster, Node


@pytest.fixture(scope="module")
def cluster(server_url: str) -> Iterator[Cluster]:
    c = Cluster(
        server_url,
        Path(tempfile.mkdtemp(prefix="mc-fed-")),
        MUTUALCREDIT_FEDERATION_TTL_SECONDS="8",
        MUTUALCREDIT_FEDERATION_HOP_MARGIN_SECONDS="2",
    )
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        hub, charlie = c.add("hub", scale=0), c.add("charlie")
        c.connect(alpha, bravo, num=3, den=2, caps=5_000)
        c.connect(alpha, hub, num=1, den=10, caps=100_000, a_default_route=True)
        c.connect(charlie, hub, num=1, den=10, caps=100_000)
        for node, members in ((alpha, "ann amy"), (bravo, "bob"), (charlie, "carl"), (hub, "hal")):
            for code in members.split():
                node.member(code)
        yield c
    finally:
        c.close()


def test_trades_cross_both_ways_at_an_exact_rate_and_reconcile(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    before = (alpha.balance("ann"), bravo.balance("bob"))
    key = str(uuid.uuid4())
    r = alpha.pay("ann", "bravo/bob", 101, key=key, description="apples")
    assert r.status_code == 201, r.text
    trade = r.json()
    assert trade["status"] == "posted"
    assert trade["transfer"]["status"] == "accepted"
    # 101 at 3/2 is 151.5: 151 arrive, the half stays with alpha (rounded down, documented).
    assert trade["transfer"]["amount_received"] == 151
    assert (alpha.balance("ann"), bravo.balance("bob")) == (before[0] - 101, before[1] + 151)
    # A retry with the same key answers with the same trade, booked once.
    again = alpha.pay("ann", "bravo/bob", 101, key=key, description="apples")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == trade["id"]
    assert bravo.balance("bob") == before[1] + 151
    # Same key, different trade: refused, nothing booked.
    conflict = alpha.pay("ann", "bravo/bob", 102, key=key)
    assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")

    r = bravo.pay("bob", "alpha/amy", 50)
    assert r.status_code == 201, r.text
    assert r.json()["transfer"]["amount_received"] == 33  # 50 * 2/3 = 33.33...
    settled(alpha, bravo)
    report = alpha.reconcile(bravo)
    assert report["differences"] == []
    # alpha's link: +101 out, -33 in = 68; bravo's: +50 - 151 = -101. In bravo's units alpha's
    # side is worth 151.5 - 49.5 = 102; the difference to 101 is the two remainders, 1/2 each.
    assert report["balances"] == {
        "alpha": {"ledger": 68, "from_statement": 68},
        "bravo": {"ledger": -101, "from_statement": -101},
    }
    assert report["mirror"] == {
        "ours_in_peer_units": "102",
        "difference": "1",
        "tracked_remainder": "1",
        "holds": True,
    }

    r = alpha.request("POST", "/federation/links/bravo/checkpoints", alpha.operator)
    assert r.status_code == 201, r.text
    checkpoint = r.json()
    assert set(checkpoint["signatures"]) == {"alpha", "bravo"}
    theirs = bravo.request("GET", "/federation/links/alpha/checkpoints", bravo.operator).json()
    assert theirs[0]["payload"] == checkpoint["payload"]


def test_a_refusal_by_the_destination_voids_the_hold(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    # bravo lets alpha owe it at most 5,000; alpha's member may pay 9,000 by its own limits,
    # and alpha lifts its own cap on what it owes bravo: so bravo is the one to refuse.
    for account in ("ann", "link.bravo"):
        r = alpha.request(
            "PUT",
            f"/accounts/{account}/limits",
            alpha.operator,
            json={"credit_limit": 1_000_000, "balance_max": None, "reason": "test"},
        )
        assert r.status_code == 200, r.text
    before = alpha.balance("ann")
    key = str(uuid.uuid4())
    r = alpha.pay("ann", "bravo/bob", 9_000, key=key)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert (problem["code"], problem["remote_code"], problem["refused_by"]) == (
        "transfer_refused",
        "credit_limit_exceeded",
        "bravo",
    )
    trade = alpha.trade(problem["trade_id"])
    assert trade["status"] == "voided"
    assert alpha.balance("ann") == before
    # The retry learns the same refusal.
    again = alpha.pay("ann", "bravo/bob", 9_000, key=key)
    assert (again.status_code, again.json()["remote_code"]) == (409, "credit_limit_exceeded")
    settled(alpha, bravo)


def test_a_member_cannot_touch_a_cross_network_hold(cluster: Cluster) -> None:
    alpha = cluster.nodes["alpha"]
    r = alpha.pay("ann", "bravo/bob", 7)
    assert r.status_code == 201
    trade_id = r.json()["id"]
    for action in ("post", "void"):
        r = alpha.request("POST", f"/trades/{trade_id}/{action}", alpha.operator)
        assert (r.status_code, r.json()["code"]) == (409, "trade_federated")
    r = alpha.pay("ann", "nowhere-x/bob", 70)
    # alpha routes unknown networks to its hub, which has no route: refused there.
    assert (r.status_code, r.json()["remote_code"]) == (409, "no_route")


def test_a_trade_routes_through_a_hub_with_shortening_expiries(cluster: Cluster) -> None:
    alpha, hub, charlie = (cluster.nodes[n] for n in ("alpha", "hub", "charlie"))
    before = (alpha.balance("ann"), charlie.balance("carl"), hub.balance("link.alpha"))
    r = alpha.pay("ann", "charlie/carl", 250)
    assert r.status_code == 201, r.text
    transfer_id = r.json()["transfer"]["transfer_id"]
    # 250 of alpha (scale 2) -> 25 of hub (scale 0, rate 1/10) -> 250 of charlie (rate 10/1).
    assert alpha.balance("ann") == before[0] - 250
    assert charlie.balance("carl") == before[1] + 250
    assert hub.balance("link.alpha") == before[2] - 25
    hops = asyncio.run(
        hub.fetch(
            "SELECT direction, expires_at FROM transfers WHERE transfer_id = $1",
            uuid.UUID(transfer_id),
        )
    )
    expiry = {h["direction"]: h["expires_at"] for h in hops}
    assert expiry["out"] < expiry["in"]
    settled(alpha, hub, charlie)


def test_a_hubs_hold_waiting_for_the_next_network_is_in_its_ledger_and_records(
    cluster: Cluster,
) -> None:
    """At a hub, a transfer forwarded and not yet decided holds link.<in> -> link.<out>: the
    pending figures of both link accounts, which the records (a transfer forwarded in, one in
    flight out) say as well, so neither link's ledger differs from its records."""
    alpha, hub, charlie = (cluster.nodes[n] for n in ("alpha", "hub", "charlie"))
    charlie.stop()
    try:
        r = alpha.pay("ann", "charlie/carl", 120)
        assert r.status_code == 202, r.text
        for peer, account, figure in (
            ("alpha", "link.alpha", "pending_debits"),
            ("charlie", "link.charlie", "pending_credits"),
        ):
            r = hub.request("GET", f"/federation/links/{peer}/statement", hub.operator)
            assert r.status_code == 200, r.text
            ledger = r.json()["ledger"]
            assert ledger["agrees"] is True, ledger
            assert ledger["accounts"][account]["records"][figure] == 12, ledger
    finally:
        charlie.start()
    settled(alpha, hub, charlie)


def test_settlement_moves_both_link_balances_toward_zero(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    alpha.pay("ann", "bravo/bob", 200)
    settled(alpha, bravo)
    owed = alpha.balance("link.bravo")  # positive: alpha owes bravo
    assert owed > 0
    ref = f"bank-{uuid.uuid4().hex[:6]}"
    # The side that owes records first; the side that is owed executes. 100 of alpha = 150 of
    # bravo at the link's rate.
    r = alpha.request(
        "POST",
        "/federation/links/bravo/settlements",
        alpha.operator,
        json={"reference": ref, "amount": 100},
    )
    assert (r.status_code, r.json()["status"]) == (201, "agreed"), r.text
    bravo_before = bravo.balance("link.alpha")
    r = bravo.request(
        "POST",
        "/federation/links/alpha/settlements",
        bravo.operator,
        json={"reference": ref, "amount": 150},
    )
    assert r.status_code == 201, r.text
    wait(
        lambda: (
            bravo.request("GET", "/federation/links/alpha/settlements", bravo.operator).json()[0][
                "status"
            ]
            in ("executed", "refused")
        )
    )
    assert (
        bravo.request("GET", "/federation/links/alpha/settlements", bravo.operator).json()[0][
            "status"
        ]
        == "executed"
    )
    assert alpha.balance("link.bravo") == owed - 100
    assert bravo.balance("link.alpha") == bravo_before + 150
    settled(alpha, bravo)
    # A settlement the other side did not record is refused, at once, and nothing moves.
    r = bravo.request(
        "POST",
        "/federation/links/alpha/settlements",
        bravo.operator,
        json={"reference": ref + "-x", "amount": 3},
    )
    assert (r.status_code, r.json()["code"]) == (409, "settlement_not_recorded"), r.text
    assert (
        bravo.request("GET", "/federation/links/alpha/settlements", bravo.operator).json()[0][
            "status"
        ]
        == "refused"
    )
    settled(alpha, bravo)
    # Once alpha records it (3 of bravo arrive as 2 of alpha), bravo records it again under the
    # same reference, and it is sent as a new transfer.
    r = alpha.request(
        "POST",
        "/federation/links/bravo/settlements",
        alpha.operator,
        json={"reference": ref + "-x", "amount": 2},
    )
    assert (r.status_code, r.json()["status"]) == (201, "agreed"), r.text
    before = (alpha.balance("link.bravo"), bravo.balance("link.alpha"))
    r = bravo.request(
        "POST",
        "/federation/links/alpha/settlements",
        bravo.operator,
        json={"reference": ref + "-x", "amount": 3},
    )
    assert (r.status_code, r.json()["status"]) == (201, "executed"), r.text
    assert (alpha.balance("link.bravo"), bravo.balance("link.alpha")) == (
        before[0] - 2,
        before[1] + 3,
    )
    r = bravo.request(
        "POST",
        "/federation/links/alpha/settlements",
        bravo.operator,
        json={"reference": ref + "-x", "amount": 3},
    )
    assert (r.status_code, r.json()["code"]) == (409, "settlement_exists"), r.text
    settled(alpha, bravo)


def _peer_status(node: Node, peer: str) -> str:
    r = node.request("GET", f"/federation/links/{peer}", node.operator)
    assert r.status_code == 200, r.text
    return str(r.json()["peer_status"])


def test_a_suspended_link_refuses_new_trades(cluster: Cluster) -> None:
    """bravo suspends its side: bravo sends nothing and refuses what arrives at once; alpha,
    told by bravo's outbox loop, sends nothing new either. A trade alpha sends before it is
    told is refused by bravo; either way nothing crosses."""
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    ann = alpha.balance("ann")
    r = bravo.request(
        "POST", "/federation/links/alpha/suspend", bravo.operator, json={"reason": "review"}
    )
    assert r.status_code == 200, r.text
    try:
        r = alpha.pay("ann", "bravo/bob", 5)
        problem = r.json()
        assert r.status_code == 409, r.text
        assert "link_not_active" in (problem["code"], problem.get("remote_code")), r.text
        r = bravo.pay("bob", "alpha/ann", 5)
        assert (r.status_code, r.json()["code"]) == (409, "link_not_active")
        wait(lambda: _peer_status(alpha, "bravo") == "suspended", 15)
        r = alpha.pay("ann", "bravo/bob", 5)
        assert (r.status_code, r.json()["code"], r.json()["peer_status"]) == (
            409,
            "link_not_active",
            "suspended",
        ), r.text
        assert alpha.balance("ann") == ann
    finally:
        bravo.request(
            "POST", "/federation/links/alpha/resume", bravo.operator, json={"reason": "done"}
        )
        wait(lambda: _peer_status(alpha, "bravo") == "active", 15)
    assert alpha.pay("ann", "bravo/bob", 5).status_code == 201
    settled(alpha, bravo)


def test_key_rotation_is_announced_and_trades_continue(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    r = alpha.request("POST", "/federation/keys/rotate", alpha.operator)
    assert r.status_code == 200, r.text
    assert r.json()["peers"]["bravo"] == "registered"
    assert alpha.pay("ann", "bravo/bob", 9).status_code == 201
    settled(alpha, bravo)


def test_descriptor_is_public_and_has_no_secret(cluster: Cluster) -> None:
    alpha = cluster.nodes["alpha"]
    doc = alpha.descriptor()
    assert doc["protocol"] == "mutualcredit-federation/1"
    assert doc["unit"]["scale"] == 2
    assert doc["url"] == alpha.url
    assert {"key_id", "public_key", "status"} <= set(doc["keys"][0])
    assert (
        "private"
        not in httpx.get(f"{alpha.url}/federation/v1/networks/alpha/descriptor", timeout=10).text
    )


def test_a_new_rate_is_agreed_again_before_value_crosses(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    link = "/federation/links/bravo"

    def change(node: Node, path: str, body: dict[str, object]) -> httpx.Response:
        return node.request("PATCH", path, node.operator, json=body)

    r = change(alpha, link, {"rate": {"num": 2, "den": 1}, "reason": "new agreement"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert (view["status"], view["rate"], view["agreed_at"]) == (
        "proposed",
        {"num": 2, "den": 1, "version": 2},
        None,
    )
    # Until both agree, nothing crosses either way: alpha refuses to send, and refuses what
    # bravo (still at the old rate) sends; bravo's hold is voided.
    r = alpha.pay("ann", "bravo/bob", 10)
    assert (r.status_code, r.json()["code"]) == (409, "link_not_active"), r.text
    r = bravo.pay("bob", "alpha/ann", 10)
    assert (r.status_code, r.json()["remote_code"]) == (409, "link_not_active"), r.text
    # bravo still holds 2/3, not the inverse of 2/1.
    r = alpha.request("POST", f"{link}/agree", alpha.operator)
    assert (r.status_code, r.json()["code"]) == (409, "link_rate_mismatch"), r.text
    r = change(bravo, "/federation/links/alpha", {"rate": {"num": 1, "den": 2}, "reason": "ok"})
    assert (r.status_code, r.json()["rate"]["version"]) == (200, 2), r.text
    r = alpha.request("POST", f"{link}/agree", alpha.operator)
    assert r.status_code == 200, r.text
    for node, peer in ((alpha, "bravo"), (bravo, "alpha")):
        view = node.request("GET", f"/federation/links/{peer}", node.operator).json()
        assert (view["status"], view["rate"]["version"]) == ("active", 2), view
    r = alpha.pay("ann", "bravo/bob", 10)
    assert (r.status_code, r.json()["transfer"]["amount_received"]) == (201, 20), r.text
    assert r.json()["transfer"]["rate"] == {"num": 2, "den": 1, "version": 2}
    # Transfers at both rates reconcile: each is valued at the rate it crossed at.
    settled(alpha, bravo)
    report = alpha.reconcile(bravo)
    assert report["mirror"]["holds"], report
    assert report["agreed"], report
    # A wrong URL fails closed (the peer cannot be reached), and the right one works again.
    good = bravo.url
    r = change(alpha, link, {"peer_url": "http://127.0.0.1:9", "reason": "moved"})
    assert (r.status_code, r.json()["peer_url"]) == (200, "http://127.0.0.1:9"), r.text
    r = alpha.request("POST", f"{link}/agree", alpha.operator)
    assert (r.status_code, r.json()["code"]) == (502, "peer_unreachable"), r.text
    r = change(alpha, link, {"peer_url": good, "reason": "back"})
    assert r.status_code == 200, r.text
    assert alpha.request("POST", f"{link}/agree", alpha.operator).status_code == 200
    # Nothing to change, or a member asking, is refused.
    r = change(alpha, link, {"reason": "nothing"})
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    r = alpha.request(
        "PATCH", link, alpha.members["ann"], json={"rate": {"num": 1, "den": 1}, "reason": "x"}
    )
    assert r.status_code == 403, r.text


def test_a_retry_across_networks_gets_its_first_answer(cluster: Cluster) -> None:
    """A cross-network trade, accepted or refused (here or at the destination), retried with
    its key after the link was suspended, gets the first answer; a new key gets the refusal of
    the moment."""
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    first: dict[str, tuple[str, int, httpx.Response]] = {}
    # Accepted; refused at the destination (no such member there); refused here (beyond ann's
    # own credit).
    for payee, amount, code in (
        ("bravo/bob", 5, None),
        ("bravo/nobody", 5, "transfer_refused"),
        ("bravo/bob", 10**12, "credit_limit_exceeded"),
    ):
        key = str(uuid.uuid4())
        answer = alpha.pay("ann", payee, amount, key=key)
        if code is None:
            assert answer.status_code == 201, answer.text
        else:
            assert (answer.status_code, answer.json()["code"]) == (409, code), answer.text
        first[key] = (payee, amount, answer)
    r = alpha.request(
        "POST", "/federation/links/bravo/suspend", alpha.operator, json={"reason": "review"}
    )
    assert r.status_code == 200, r.text
    try:
        for key, (payee, amount, answer) in first.items():
            again = alpha.pay("ann", payee, amount, key=key)
            assert again.status_code == answer.status_code, again.text
            assert again.headers["idempotent-replayed"] == "true"
            if answer.status_code == 201:
                assert again.json()["id"] == answer.json()["id"]
            else:
                assert again.json() == answer.json()
        fresh = alpha.pay("ann", "bravo/bob", 5)
        assert (fresh.status_code, fresh.json()["code"]) == (409, "link_not_active")
    finally:
        alpha.request(
            "POST", "/federation/links/bravo/resume", alpha.operator, json={"reason": "done"}
        )
    settled(alpha, bravo)


def test_a_cross_network_trade_is_refused_clearly_for_what_it_cannot_be(
    cluster: Cluster,
) -> None:
    alpha = cluster.nodes["alpha"]
    r = alpha.pay("ann", "bravo/bob", 5, pending=True)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    assert r.json()["detail"].startswith("pending:")
    # At the link's rate (above one: 3/2, or 2/1 once a test agreed a new one), the largest
    # amount there is would be worth more than an amount may be at bravo.
    rate = alpha.request("GET", "/federation/links/bravo", alpha.operator).json()["rate"]
    assert rate["num"] > rate["den"]
    r = alpha.pay("ann", "bravo/bob", 2**53 - 1)
    assert (r.status_code, r.json()["code"]) == (422, "amount_too_large"), r.text
    assert r.json()["rate"] == f"{rate['num']}/{rate['den']}"
