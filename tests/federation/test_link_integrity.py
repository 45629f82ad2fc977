"""A link's accounts belong to the protocol, and its bookings are corrected only across it.

Four networks as separate service processes: alpha and bravo linked directly, alpha reaching
charlie through hub. Each test tries, as a member or an operator would, to move a link's
accounts by some means other than the protocol (a local trade, a payment request, a transfer
naming another network's link, a reversal, a write-off, a status change, an account opened by
hand), and checks the refusal, that nothing moved, and that every link still reconciles."""

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.checks import settled, wait
from tests.federation.cluster import Cluster, Node, auth


@pytest.fixture(scope="module")
def cluster(server_url: str) -> Iterator[Cluster]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-fed-integrity-")))
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        hub, charlie = c.add("hub"), c.add("charlie")
        c.connect(alpha, bravo, num=3, den=2, caps=50_000)
        c.connect(alpha, hub, caps=50_000, a_default_route=True)
        c.connect(charlie, hub, caps=50_000)
        for node, members in ((alpha, "ann amy"), (bravo, "bob"), (charlie, "carl"), (hub, "hal")):
            for code in members.split():
                node.member(code)
        yield c
    finally:
        c.close()


def _as_operator(
    node: Node, path: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    """A write with a fresh Idempotency-Key, by the operator (or the key given)."""
    return httpx.post(
        f"{node.base}{path}",
        json=body,
        headers={**auth(token or node.operator), "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )


def _figures(node: Node, *accounts: str) -> dict[str, tuple[int, int, int, str]]:
    figures = {}
    for code in accounts:
        r = node.request("GET", f"/accounts/{code}", node.operator)
        assert r.status_code == 200, r.text
        a = r.json()
        figures[code] = (a["balance"], a["pending_debits"], a["pending_credits"], a["status"])
    return figures


def _reconciled(a: Node, b: Node) -> None:
    settled(a, b)
    report = a.reconcile(b)
    assert report["agreed"], report
    assert report["differences"] == [], report


LINKS = ("link.bravo", "settlement.bravo", "link.hub", "settlement.hub")


@pytest.mark.parametrize("reserved", LINKS)
def test_a_local_trade_cannot_name_a_links_account(cluster: Cluster, reserved: str) -> None:
    """Paid by a member, paid by an operator from it or to it, as a hold or posted: refused
    (account_reserved) before anything moves, and the refusal is the answer to a retry."""
    alpha, bravo, hub = (cluster.nodes[n] for n in ("alpha", "bravo", "hub"))
    before = _figures(alpha, "ann", *LINKS)
    key = str(uuid.uuid4())
    r = alpha.pay("ann", reserved, 10, key=key)
    assert (r.status_code, r.json()["code"], r.json()["account"]) == (
        409,
        "account_reserved",
        reserved,
    ), r.text
    again = alpha.pay("ann", reserved, 10, key=key)
    assert (again.status_code, again.json()["code"]) == (409, "account_reserved")
    assert again.headers["Idempotent-Replayed"] == "true"
    for body in (
        {"payer": reserved, "payee": "ann", "amount": 10},
        {"payer": "ann", "payee": reserved, "amount": 10, "pending": True},
        {"payer": reserved, "payee": "amy", "amount": 10, "pending": True},
    ):
        r = _as_operator(alpha, "/trades", body)
        assert (r.status_code, r.json()["code"]) == (409, "account_reserved"), (body, r.text)
    assert _figures(alpha, "ann", *LINKS) == before
    _reconciled(alpha, bravo)
    _reconciled(alpha, hub)


def test_a_link_account_cannot_pay_across(cluster: Cluster) -> None:
    """A link's account is not a payer of the protocol's either: only members pay across."""
    alpha = cluster.nodes["alpha"]
    before = _figures(alpha, *LINKS)
    for payer in ("link.hub", "settlement.bravo"):
        r = _as_operator(alpha, "/trades", {"payer": payer, "payee": "bravo/bob", "amount": 10})
        assert (r.status_code, r.json()["code"], r.json()["account"]) == (
            409,
            "account_reserved",
            payer,
        ), r.text
    assert _figures(alpha, *LINKS) == before


@pytest.mark.parametrize(
    ("payee", "refused_by"),
    [
        ("bravo/link.alpha", "bravo"),
        ("bravo/settlement.alpha", "bravo"),
        ("hub/link.charlie", "hub"),
        ("hub/link.alpha", "hub"),
        ("hub/settlement.charlie", "hub"),
        ("charlie/link.hub", "charlie"),
    ],
)
def test_a_transfer_cannot_pay_a_links_account_at_its_destination(
    cluster: Cluster, payee: str, refused_by: str
) -> None:
    """A member of alpha pays another network's link account: that network refuses it, the
    hold at alpha (and at the hub on the way) is voided, and no link's cap is used."""
    alpha, bravo, hub, charlie = (cluster.nodes[n] for n in ("alpha", "bravo", "hub", "charlie"))
    watched = [
        (alpha, ("ann", *LINKS)),
        (bravo, ("link.alpha", "settlement.alpha")),
        (hub, ("link.alpha", "link.charlie", "settlement.alpha", "settlement.charlie")),
        (charlie, ("link.hub", "settlement.hub")),
    ]
    before = [_figures(node, *codes) for node, codes in watched]
    r = alpha.pay("ann", payee, 25)
    problem = r.json()
    assert (r.status_code, problem["code"], problem["remote_code"]) == (
        409,
        "transfer_refused",
        "account_reserved",
    ), r.text
    assert problem["refused_by"] == refused_by  # the network that refused, behind a hub too
    assert alpha.trade(problem["trade_id"])["status"] == "voided"
    _reconciled(alpha, bravo)
    _reconciled(alpha, hub)
    _reconciled(charlie, hub)
    assert [_figures(node, *codes) for node, codes in watched] == before


@pytest.mark.parametrize(
    "body",
    [
        {"code": "link.delta", "kind": "link"},
        {"code": "settlement.delta", "kind": "settlement"},
        {"code": "delta", "kind": "link"},
        {"code": "delta", "kind": "settlement"},
        {"code": "link.delta"},
        {"code": "settlement.delta", "kind": "system"},
        {"code": "Link.Delta"},
        {"code": "SETTLEMENT.delta"},
    ],
)
def test_a_links_accounts_are_not_opened_by_hand(cluster: Cluster, body: dict[str, str]) -> None:
    alpha = cluster.nodes["alpha"]
    r = alpha.request("POST", "/accounts", alpha.operator, json=body)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    assert alpha.request("GET", f"/accounts/{body['code']}", alpha.operator).status_code == 404


def test_a_links_accounts_take_no_requests_status_changes_or_write_offs(
    cluster: Cluster,
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    before = _figures(alpha, *LINKS)
    for body in (
        {"payer": "link.bravo", "payee": "ann", "amount": 5},
        {"payer": "ann", "payee": "settlement.hub", "amount": 5},
    ):
        r = _as_operator(alpha, "/requests", body)
        assert (r.status_code, r.json()["code"]) == (409, "account_reserved"), r.text
    for account in LINKS:
        for action, change in (
            ("suspend", {"reason": "test"}),
            ("close", {"reason": "test"}),
            ("close", {"reason": "test", "write_off_to": "treasury"}),
        ):
            r = _as_operator(alpha, f"/accounts/{account}/{action}", change)
            assert (r.status_code, r.json()["code"]) == (409, "account_reserved"), (
                account,
                action,
                r.text,
            )
    # Nor is a link's settlement account somewhere to write a member's balance off to.
    alpha.member("leaving")
    assert alpha.pay("leaving", "amy", 7).status_code == 201
    for target in ("settlement.bravo", "link.bravo"):
        r = _as_operator(
            alpha, "/accounts/leaving/close", {"reason": "moved away", "write_off_to": target}
        )
        assert (r.status_code, r.json()["code"]) == (409, "write_off_account_invalid"), r.text
    assert _figures(alpha, *LINKS) == before
    _reconciled(alpha, bravo)


def _reverse(node: Node, trade_id: str) -> httpx.Response:
    return _as_operator(node, f"/trades/{trade_id}/reverse", {"reason": "a mistake"})


def _trade_of(node: Node, account: str, transfer_id: str) -> dict[str, Any]:
    r = node.request("GET", f"/trades?account={account}", node.operator)
    assert r.status_code == 200, r.text
    return next(t for t in r.json()["items"] if t["metadata"].get("transfer_id") == transfer_id)


def test_protocol_bookings_are_corrected_across_not_on_one_side(cluster: Cluster) -> None:
    """The origin's trade, the destination's, a hub's forwarding trade and an executed
    settlement are refused a reversal (trade_federated). A mistake is corrected the way the
    README says: the payee pays it back across, and both links still reconcile."""
    alpha, bravo, hub, charlie = (cluster.nodes[n] for n in ("alpha", "bravo", "hub", "charlie"))
    ann, bob = alpha.balance("ann"), bravo.balance("bob")
    r = alpha.pay("ann", "bravo/bob", 100, description="paid the wrong bob")
    assert r.status_code == 201, r.text
    sent = r.json()
    transfer_id = sent["transfer"]["transfer_id"]
    received = _trade_of(bravo, "bob", transfer_id)
    assert received["amount"] == 150
    r = alpha.pay("ann", "charlie/carl", 40)
    assert r.status_code == 201, r.text
    routed = r.json()
    forwarded = _trade_of(hub, "link.charlie", routed["transfer"]["transfer_id"])

    for node, trade_id in (
        (alpha, sent["id"]),
        (bravo, received["id"]),
        (alpha, routed["id"]),
        (hub, forwarded["id"]),
        (charlie, _trade_of(charlie, "carl", routed["transfer"]["transfer_id"])["id"]),
    ):
        r = _reverse(node, trade_id)
        assert (r.status_code, r.json()["code"]) == (409, "trade_federated"), (node.name, r.text)
        assert node.trade(trade_id)["reversed_by"] is None

    # The correction: bob's network sends it back to ann (150 of bravo are 100 of alpha).
    r = _as_operator(
        bravo,
        "/trades",
        {"payer": "bob", "payee": "alpha/ann", "amount": 150, "description": "refund"},
        token=bravo.members["bob"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["transfer"]["amount_received"] == 100
    assert (alpha.balance("ann"), bravo.balance("bob")) == (ann - 40, bob)
    _reconciled(alpha, bravo)
    _reconciled(alpha, hub)
    _reconciled(charlie, hub)
    r = alpha.request("POST", "/federation/links/bravo/checkpoints", alpha.operator)
    assert r.status_code == 201, r.text


def test_an_executed_settlement_is_not_reversed(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    assert alpha.pay("amy", "bravo/bob", 20).status_code == 201
    settled(alpha, bravo)
    ref = f"bank-{uuid.uuid4().hex[:6]}"
    r = _as_operator(alpha, "/federation/links/bravo/settlements", {"reference": ref, "amount": 2})
    assert r.status_code == 201, r.text
    r = _as_operator(bravo, "/federation/links/alpha/settlements", {"reference": ref, "amount": 3})
    assert r.status_code == 201, r.text

    def executed() -> dict[str, Any] | None:
        rows = bravo.request("GET", "/federation/links/alpha/settlements", bravo.operator).json()
        row = next(s for s in rows if s["reference"] == ref)
        return row if row["status"] == "executed" else None

    wait(lambda: executed() is not None)
    for node, account in ((bravo, "settlement.alpha"), (alpha, "settlement.bravo")):
        r = node.request("GET", f"/trades?account={account}", node.operator)
        trade = next(t for t in r.json()["items"] if t["kind"] == "settlement")
        r = _reverse(node, trade["id"])
        assert (r.status_code, r.json()["code"]) == (409, "trade_federated"), r.text
    _reconciled(alpha, bravo)
