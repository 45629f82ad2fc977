"""Routes beyond one hub: five networks in a tree, each a service process with its database.

    town-a ── hub-a ── root ── hub-b ── town-b

Each town and hub sends what it has no direct link for up the tree (its default route); root
sends down by its links' route tables (town-a through hub-a, town-b through hub-b), set by its
operator. Every network pays every other, both ways, across up to three hubs; then `settled`
checks that each network sums to zero, each hop is booked once at both ends and each link
reconciles. A misconfigured route (root sends a network to hub-a, which sends it back up) is
refused with route_loop, and nothing of it stays booked or held anywhere.
"""

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mutualcredit.federation import protocol
from mutualcredit.federation.schemas import TransferMessage
from tests.federation.checks import settled, wait
from tests.federation.cluster import Cluster, Node

TOWNS = ("town-a", "town-b")
NAMES = ("root", "hub-a", "hub-b", *TOWNS)


@pytest.fixture(scope="module")
def tree(server_url: str) -> Iterator[dict[str, Node]]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-routes-")))
    try:
        nodes = {name: c.add(name) for name in NAMES}
        # Child first: the child's side of each link is its default route, up the tree.
        for child, parent in (
            ("town-a", "hub-a"),
            ("hub-a", "root"),
            ("hub-b", "root"),
            ("town-b", "hub-b"),
        ):
            c.connect(nodes[child], nodes[parent], a_default_route=True)
        for node in nodes.values():
            node.member("m")
        root = nodes["root"]
        assert set_routes(root, "hub-a", ["town-a"]).json()["routes"] == ["town-a"]
        assert set_routes(root, "hub-b", ["town-b"]).json()["routes"] == ["town-b"]
        yield nodes
    finally:
        c.close()


def set_routes(node: Node, peer: str, routes: list[str]) -> httpx.Response:
    r = node.request(
        "PATCH",
        f"/federation/links/{peer}",
        node.operator,
        json={"routes": routes, "reason": "the networks below " + peer},
    )
    assert r.status_code == 200, r.text
    return r


def booked(node: Node, r: httpx.Response) -> dict[str, Any]:
    """The trade a payment answered with, once posted (at once, or after its 202)."""
    assert r.status_code in (201, 202), r.text
    trade_id = r.json()["id"]
    wait(lambda: node.trade(trade_id)["status"] != "pending")
    trade = node.trade(trade_id)
    assert trade["status"] == "posted", trade
    return trade


def test_every_network_of_the_tree_pays_every_other_both_ways(tree: dict[str, Node]) -> None:
    before = {name: node.balance("m") for name, node in tree.items()}
    expected = dict(before)
    for i, (payer, payee) in enumerate((a, b) for a in NAMES for b in NAMES if a != b):
        amount = 100 + i
        trade = booked(tree[payer], tree[payer].pay("m", f"{payee}/m", amount))
        assert trade["transfer"]["status"] == "accepted", (payer, payee, trade)
        expected[payer] -= amount
        expected[payee] += amount  # every rate is 1/1
    assert {name: node.balance("m") for name, node in tree.items()} == expected

    # Town to town crossed three hubs, each named in the path that reached town-b.
    rows = asyncio.run(
        tree["town-b"].fetch(
            "SELECT via FROM transfers WHERE direction = 'in' AND payer_address = 'town-a/m'"
        )
    )
    assert [list(r["via"]) for r in rows] == [["hub-a", "root", "hub-b"]]
    settled(*tree.values())


def test_a_route_that_sends_a_transfer_back_is_refused_and_nothing_stays_booked(
    tree: dict[str, Node],
) -> None:
    root, town_a, town_b = tree["root"], tree["town-a"], tree["town-b"]
    # Misconfigured: root sends `lost` to hub-a, whose default route sends it back to root.
    set_routes(root, "hub-a", ["town-a", "lost"])
    try:
        before = {name: node.balance("m") for name, node in tree.items()}
        # From below hub-a: root would send it back to hub-a, where it came from.
        # From town-b: hub-a would send it back to root, which it visited.
        for payer, refused_by in ((town_a, "root"), (town_b, "hub-a")):
            r = payer.pay("m", "lost/m", 250)
            assert r.status_code == 409, r.text
            problem = r.json()
            assert (problem["code"], problem["remote_code"], problem["refused_by"]) == (
                "transfer_refused",
                "route_loop",
                refused_by,
            )
            assert payer.trade(problem["trade_id"])["status"] == "voided"
            transfer_id = uuid.UUID(problem["transfer_id"])
            # Every network on the way holds nothing of it: each hold it made is voided.
            for node in tree.values():
                trades = asyncio.run(
                    node.fetch(
                        "SELECT tr.status FROM transfers t JOIN trades tr ON tr.id = t.trade_id"
                        " WHERE t.transfer_id = $1",
                        transfer_id,
                    )
                )
                assert {t["status"] for t in trades} <= {"voided"}, (node.name, trades)
        assert {name: node.balance("m") for name, node in tree.items()} == before
        settled(*tree.values())
    finally:
        set_routes(root, "hub-a", ["town-a"])


def test_a_route_table_is_checked_and_on_record(tree: dict[str, Node]) -> None:
    root = tree["root"]

    def patch(peer: str, routes: list[str]) -> httpx.Response:
        return root.request(
            "PATCH",
            f"/federation/links/{peer}",
            root.operator,
            json={"routes": routes, "reason": "routes"},
        )

    # A destination has one route: hub-b cannot take town-a from hub-a.
    r = patch("hub-b", ["town-b", "town-a"])
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["network"], r.json()["peer"]) == (
        "route_taken",
        "town-a",
        "hub-a",
    )
    for routes in (["root"], ["hub-b"], ["x", "x"], ["Not A Code"]):
        r = patch("hub-b", routes)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), (routes, r.text)
    # Nothing of the refused changes was kept.
    r = root.request("GET", "/federation/links", root.operator)
    assert {link["peer"]: link["routes"] for link in r.json()} == {
        "hub-a": ["town-a"],
        "hub-b": ["town-b"],
    }
    # Each route added and removed is on record, with the operator's reason.
    set_routes(root, "hub-b", ["town-b", "far"])
    set_routes(root, "hub-b", ["town-b"])
    for action in ("link_route.created", "link_route.deleted"):
        r = root.request("GET", f"/audit?action={action}", root.operator)
        assert r.status_code == 200, r.text
        records = [(x["subject_id"].rsplit("/", 1)[1], x["reason"]) for x in r.json()["items"]]
        assert ("far", "the networks below hub-b") in records, (action, records)


def test_a_network_sends_nothing_on_past_its_most_hops(tree: dict[str, Node]) -> None:
    root = tree["root"]
    root.stop()
    root.settings["MUTUALCREDIT_FEDERATION_MAX_HOPS"] = "2"
    root.start()
    try:
        before = {name: node.balance("m") for name, node in tree.items()}
        # town-a -> hub-a -> root -> hub-b would be a third link: root does not send it on.
        for payee in ("hub-b", "town-b"):
            r = tree["town-a"].pay("m", f"{payee}/m", 30)
            assert r.status_code == 409, r.text
            problem = r.json()
            assert (problem["remote_code"], problem["refused_by"]) == ("too_many_hops", "root")
            assert problem["remote_detail"]["max_hops"] == 2
        assert {name: node.balance("m") for name, node in tree.items()} == before
        # Two links are within it: hub-a -> root -> hub-b.
        booked(tree["hub-a"], tree["hub-a"].pay("m", "hub-b/m", 30))
        settled(*tree.values())
    finally:
        root.stop()
        del root.settings["MUTUALCREDIT_FEDERATION_MAX_HOPS"]
        root.start()


def test_a_transfer_from_its_origin_keeps_the_wire_form_of_before_routes() -> None:
    """So that a network of the earlier version still reads it, and hashes it the same."""
    sent = {
        "transfer_id": str(uuid.uuid4()),
        "kind": "federation",
        "payer": "town-a/m",
        "payee": "town-b/m",
        "amount_sent": 5,
        "amount_received": 5,
        "rate": {"num": 1, "den": 1, "version": 1},
        "expires_at": "2099-01-01T00:00:00Z",
        "description": "",
        "reference": None,
    }
    direct = TransferMessage.model_validate(sent)
    assert protocol.message(direct) == sent
    routed = TransferMessage.model_validate({**sent, "via": ["hub-a"]})
    assert protocol.message(routed) == {**sent, "via": ["hub-a"]}
    assert protocol.message_hash(routed) != protocol.message_hash(direct)
