"""Checkpoints that mean what they say: a checkpoint is computed from the link's transfer
records, so neither side signs one while its ledger holds something else.

Two networks (alpha, bravo), each a service process with its own database. To make a ledger
differ from its records the tests corrupt one network's database by hand, as a broken migration
or an operator's manual fix might: one transaction moves a figure of a link account (or of a
settlement account) and the opposite on a member's account, so the network still sums to zero,
with the database's triggers off (`session_replication_role = replica`, as the database owner).
No request of the API can do that, which is the point: it is what the checks must catch."""

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.federation.checks import settled
from tests.federation.cluster import Cluster, Node


@pytest.fixture(scope="module")
def cluster(server_url: str) -> Iterator[Cluster]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-fed-cp-")))
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        c.connect(alpha, bravo, num=3, den=2, caps=5_000)
        alpha.member("ann")
        bravo.member("bob")
        # Something on the link both ways, so the records are not all zero.
        for r in (alpha.pay("ann", "bravo/bob", 101), bravo.pay("bob", "alpha/ann", 50)):
            assert r.status_code == 201, r.text
        settled(alpha, bravo)
        yield c
    finally:
        c.close()


async def _shift(node: Node, account: str, figure: str, amount: int) -> None:
    """Adds `amount` to one figure of `account` and balances it on the member's account of the
    network (a balance against a balance; a pending credit against a pending debit, which the
    zero sum counts the opposite way), in one transaction, with the triggers off."""
    member = next(iter(node.members))
    opposite = {"balance": ("balance", -amount), "pending_credits": ("pending_debits", amount)}
    other_figure, other_amount = opposite[figure]
    conn = await asyncpg.connect(node.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for code, column, value in (
                (account, figure, amount),
                (member, other_figure, other_amount),
            ):
                status = await conn.execute(
                    f"UPDATE accounts SET {column} = {column} + $1 WHERE code = $2"
                    " AND network_id = (SELECT id FROM networks WHERE code = $3)",
                    value,
                    code,
                    node.name,
                )
                assert status == "UPDATE 1", (code, status)
    finally:
        await conn.close()


@contextmanager
def corrupted(node: Node, account: str, figure: str, amount: int) -> Iterator[None]:
    """The node's ledger moved by `amount` on `account`'s `figure`, behind the protocol's back,
    for the duration; put back as it was afterwards."""
    asyncio.run(_shift(node, account, figure, amount))
    try:
        yield
    finally:
        asyncio.run(_shift(node, account, figure, -amount))


def checkpoint(node: Node, peer: Node) -> httpx.Response:
    return node.request("POST", f"/federation/links/{peer.name}/checkpoints", node.operator)


def checkpoints(node: Node, peer: Node) -> list[dict[str, Any]]:
    r = node.request("GET", f"/federation/links/{peer.name}/checkpoints", node.operator)
    assert r.status_code == 200, r.text
    return list(r.json())


def figures(node: Node, peer: Node) -> dict[str, Any]:
    """The node's own link accounts, each as its ledger and its records say (the statement)."""
    r = node.request("GET", f"/federation/links/{peer.name}/statement", node.operator)
    assert r.status_code == 200, r.text
    ledger: dict[str, Any] = r.json()["ledger"]
    return ledger


def test_a_checkpoint_is_signed_while_both_ledgers_hold_what_the_records_say(
    cluster: Cluster,
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    report = alpha.reconcile(bravo)
    assert report["agreed"], report
    # alpha's link: +101 out, -33 in; bravo's: +50 out, -151 in. Nothing held, nothing settled.
    zero = {"balance": 0, "pending_debits": 0, "pending_credits": 0}
    assert report["ledgers"]["alpha"] == {
        "agrees": True,
        "accounts": {
            "link.bravo": {"ledger": {**zero, "balance": 68}, "records": {**zero, "balance": 68}},
            "settlement.bravo": {"ledger": zero, "records": zero},
        },
        "differences": [],
    }
    assert report["ledgers"]["bravo"]["accounts"]["link.alpha"]["records"]["balance"] == -101
    assert report["ledgers"]["bravo"]["agrees"] is True
    r = checkpoint(alpha, bravo)
    assert r.status_code == 201, r.text
    assert r.json()["payload"]["balances"] == {"alpha": 68, "bravo": -101}


@pytest.mark.parametrize(
    ("account", "figure"),
    [("link.bravo", "balance"), ("link.bravo", "pending_credits"), ("settlement.bravo", "balance")],
)
def test_a_checkpoint_is_refused_while_the_initiators_ledger_differs_from_its_records(
    cluster: Cluster, account: str, figure: str
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    ours, theirs = len(checkpoints(alpha, bravo)), len(checkpoints(bravo, alpha))
    with corrupted(alpha, account, figure, 7):
        r = checkpoint(alpha, bravo)
        assert r.status_code == 409, r.text
        problem = r.json()
        recorded = figures(alpha, bravo)["accounts"][account]["records"][figure]
        assert problem["code"] == "link_ledger_mismatch"
        assert problem["side"] == "alpha"
        assert problem["differences"] == [
            {"account": account, "figure": figure, "ledger": recorded + 7, "records": recorded}
        ]
        # Nothing signed or kept on either side; the peer was not asked.
        assert (len(checkpoints(alpha, bravo)), len(checkpoints(bravo, alpha))) == (ours, theirs)

        # Reconciliation, from either side, reports alpha's ledger against its records.
        for node, peer in ((alpha, bravo), (bravo, alpha)):
            report = node.reconcile(peer)
            assert report["agreed"] is False, report
            assert report["differences"] == []  # the records themselves agree
            assert report["ledgers"]["alpha"]["agrees"] is False
            assert report["ledgers"]["alpha"]["differences"] == problem["differences"]
            assert report["ledgers"]["bravo"]["agrees"] is True

    r = checkpoint(alpha, bravo)
    assert r.status_code == 201, r.text
    assert alpha.reconcile(bravo)["agreed"] is True


def test_the_peer_refuses_to_countersign_while_its_ledger_differs_from_its_records(
    cluster: Cluster,
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    ours, theirs = len(checkpoints(alpha, bravo)), len(checkpoints(bravo, alpha))
    with corrupted(bravo, "link.alpha", "balance", -40):
        r = checkpoint(alpha, bravo)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert (problem["code"], problem["side"]) == ("link_ledger_mismatch", "bravo")
        assert problem["differences"] == [
            {"account": "link.alpha", "figure": "balance", "ledger": -141, "records": -101}
        ]
        assert (len(checkpoints(alpha, bravo)), len(checkpoints(bravo, alpha))) == (ours, theirs)
        # bravo, asked to sign first, refuses as plainly, naming itself.
        r = checkpoint(bravo, alpha)
        assert (r.status_code, r.json()["code"], r.json()["side"]) == (
            409,
            "link_ledger_mismatch",
            "bravo",
        )

        report = alpha.reconcile(bravo)
        assert report["agreed"] is False, report
        assert report["differences"] == []
        assert report["ledgers"]["alpha"]["agrees"] is True
        assert report["ledgers"]["bravo"]["differences"] == problem["differences"]
        assert report["balances"]["bravo"] == {"ledger": -141, "from_statement": -101}

    r = checkpoint(alpha, bravo)
    assert r.status_code == 201, r.text
    assert set(r.json()["signatures"]) == {"alpha", "bravo"}
    assert len(checkpoints(bravo, alpha)) == theirs + 1
    settled(alpha, bravo)


def test_what_is_in_flight_is_in_the_records_too(cluster: Cluster) -> None:
    """A hold on its way to a peer that is down is in the ledger (pending) and in the records
    (a transfer in flight): the two still agree, and so do they once it is decided."""
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    bravo.stop()
    try:
        r = alpha.pay("ann", "bravo/bob", 30)
        assert r.status_code == 202, r.text
        ledger = figures(alpha, bravo)
        assert ledger["agrees"] is True, ledger
        assert ledger["accounts"]["link.bravo"]["ledger"]["pending_credits"] == 30
        assert ledger["accounts"]["link.bravo"]["records"]["pending_credits"] == 30
    finally:
        bravo.start()
    settled(alpha, bravo)
    assert figures(alpha, bravo)["accounts"]["link.bravo"]["records"] == {
        "balance": 98,
        "pending_debits": 0,
        "pending_credits": 0,
    }
    r = checkpoint(alpha, bravo)
    assert r.status_code == 201, r.text
