"""Events of cross-network transfers and settlements, between two service processes with their
own databases (tests/federation/cluster.py): each network announces what its own ledger did."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.checks import settled
from tests.federation.cluster import Cluster, Node

TYPES = "trade.posted,trade.held,trade.voided,transfer.accepted,transfer.refused"


@pytest.fixture(scope="module")
def pair(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    c = Cluster(server_url, Path(tmp_path_factory.mktemp("mc-events-")))
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        c.connect(alpha, bravo, caps=100_000)
        alpha.member("ann")
        bravo.member("bob")
        yield alpha, bravo
    finally:
        c.close()


def events(node: Node, token: str, after: int = 0, **params: Any) -> list[dict[str, Any]]:
    """The node's events after `after`, waiting for the first (its sealer runs every 0.2 s)."""
    r = node.request(
        "GET", "/events", token, params={"after": after, "wait": 10, "limit": 500, **params}
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def until(node: Node, token: str, count: int, **params: Any) -> list[dict[str, Any]]:
    """Reads on until `count` events are there (or fails after a few long polls)."""
    found: list[dict[str, Any]] = []
    for _ in range(5):
        found += events(node, token, found[-1]["seq"] if found else 0, **params)
        if len(found) >= count:
            break
    return found


def test_a_transfer_is_announced_on_both_sides_and_a_refusal_voids_the_hold(
    pair: tuple[Node, Node],
) -> None:
    alpha, bravo = pair
    r = alpha.pay("ann", "bravo/bob", 30)
    assert (r.status_code, r.json()["status"]) == (201, "posted"), r.text
    trade_id = r.json()["id"]
    r = alpha.pay("ann", "bravo/nobody", 5)
    assert r.status_code == 409, r.text
    settled(alpha, bravo)

    sent = until(alpha, alpha.members["ann"], 6, types=TYPES)
    # The hold is posted in the transaction that records the peer's receipt: in that order.
    assert [e["type"] for e in sent] == [
        "trade.held",
        "trade.posted",
        "transfer.accepted",
        "trade.held",
        "trade.voided",
        "transfer.refused",
    ]
    assert sent[1]["data"]["balances_after"] == {"ann": -30}
    by_type = {e["type"]: e for e in sent}
    accepted = by_type["transfer.accepted"]["data"]["transfer"]
    assert accepted["trade_id"] == trade_id
    assert (accepted["direction"], accepted["status"]) == ("out", "accepted")
    assert (accepted["amount_sent"], accepted["amount_received"]) == (30, 30)
    assert accepted["payee_address"].endswith("bob")
    assert by_type["transfer.refused"]["data"]["transfer"]["refusal_code"]
    assert by_type["transfer.accepted"]["accounts"] == ["ann", "link.bravo"]

    received = until(bravo, bravo.members["bob"], 2, types=TYPES)
    assert [e["type"] for e in received] == ["trade.posted", "transfer.accepted"]
    posted = received[0]
    # bob's view: its own balance after, not the link account's.
    assert posted["data"]["balances_after"] == {"bob": 30}


def test_a_settlement_executed_is_announced_to_both_operators(pair: tuple[Node, Node]) -> None:
    alpha, bravo = pair
    settled(alpha, bravo)
    owing = alpha.balance("link.bravo")
    assert owing > 0
    reference = f"bank-{uuid.uuid4().hex[:8]}"
    for node, peer, amount in ((alpha, bravo, owing), (bravo, alpha, owing)):
        r = httpx.post(
            f"{node.base}/federation/links/{peer.name}/settlements",
            json={"reference": reference, "amount": amount},
            headers={"Authorization": f"Bearer {node.operator}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
    settled(alpha, bravo)
    for node, peer in ((alpha, bravo), (bravo, alpha)):
        [executed] = events(node, node.operator, types="settlement.executed")
        settlement = executed["data"]["settlement"]
        assert (settlement["reference"], settlement["amount"]) == (reference, owing)
        assert settlement["link_account"] == f"link.{peer.name}"
        assert executed["accounts"] == [f"link.{peer.name}"]
