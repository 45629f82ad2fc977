"""Settlements that finish (issue 16, item 5), between two service processes with their own
databases, at the odd rate 2/3: one unit of alpha is worth 2/3 of a unit of bravo, so nearly
every transfer leaves a remainder with its sender.

A link settles to exactly zero on both sides, also when rounding alone left one side owing;
each mistake has its own code, answered to the executing side at once, and none uses up the
reference; a settlement recorded and not executed can be cancelled, and one executed cannot.
After every scenario `settled` checks both networks, the reconciliation and the mirror."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.checks import settled, wait
from tests.federation.cluster import Cluster, Node


@pytest.fixture(scope="module")
def pair(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    c = Cluster(
        server_url,
        Path(tmp_path_factory.mktemp("mc-settle-")),
        MUTUALCREDIT_FEDERATION_TTL_SECONDS="60",
        MUTUALCREDIT_FEDERATION_RETRY_MAX_SECONDS="1",
    )
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        c.connect(alpha, bravo, num=2, den=3, caps=100_000)
        alpha.member("ann")
        bravo.member("bob")
        yield alpha, bravo
    finally:
        c.close()


def record(
    node: Node, peer: Node, reference: str, amount: int, key: str | None = None
) -> httpx.Response:
    return httpx.post(
        f"{node.base}/federation/links/{peer.name}/settlements",
        json={"reference": reference, "amount": amount},
        headers={
            "Authorization": f"Bearer {node.operator}",
            **({"Idempotency-Key": key} if key else {}),
        },
        timeout=30,
    )


def cancel(
    node: Node, peer: Node, reference: str, reason: str = "recorded wrongly"
) -> httpx.Response:
    return node.request(
        "POST",
        f"/federation/links/{peer.name}/settlements/{reference}/cancel",
        node.operator,
        json={"reason": reason},
    )


def status(node: Node, peer: Node, reference: str) -> str:
    r = node.request("GET", f"/federation/links/{peer.name}/settlements", node.operator)
    found: list[dict[str, Any]] = [s for s in r.json() if s["reference"] == reference]
    assert len(found) == 1, r.text
    return str(found[0]["status"])


def balances(alpha: Node, bravo: Node) -> tuple[int, int]:
    return alpha.balance("link.bravo"), bravo.balance("link.alpha")


def refused(r: httpx.Response, code: str) -> dict[str, Any]:
    assert (r.status_code, r.json().get("code")) == (409, code), r.text
    body: dict[str, Any] = r.json()
    return body


def pay(node: Node, payer: str, payee: str, amount: int) -> None:
    r = node.pay(payer, payee, amount)
    assert (r.status_code, r.json()["status"]) == (201, "posted"), r.text


def ref() -> str:
    return f"bank-{uuid.uuid4().hex[:8]}"


def test_after_many_odd_rate_transfers_the_link_settles_to_exactly_zero(
    pair: tuple[Node, Node],
) -> None:
    alpha, bravo = pair
    for amount in (2, 5, 7, 11, 13, 17, 19, 23):
        pay(alpha, "ann", "bravo/bob", amount)
    for amount in (1, 3, 5):
        pay(bravo, "bob", "alpha/ann", amount)
    settled(alpha, bravo)
    owing, owed = balances(alpha, bravo)
    assert owing > 0 > owed
    # At the rate the two balances do not meet: settling bravo's whole balance converts to
    # less than alpha owes, and the remainders say by how much.
    assert owed * -3 // 2 != owing
    assert alpha.reconcile(bravo)["mirror"]["tracked_remainder"] != "0"

    # Each side records its whole balance: settled in full, answered with the peer's decision.
    reference = ref()
    r = record(alpha, bravo, reference, owing)
    assert (r.status_code, r.json()["status"]) == (201, "agreed"), r.text
    r = record(bravo, alpha, reference, -owed)
    assert (r.status_code, r.json()["status"]) == (201, "executed"), r.text
    assert status(alpha, bravo, reference) == "executed"
    assert balances(alpha, bravo) == (0, 0)
    settled(alpha, bravo)
    report = alpha.reconcile(bravo)
    assert report["agreed"], report
    assert report["mirror"] == {
        "ours_in_peer_units": "0",
        "difference": "0",
        "tracked_remainder": "0",
        "holds": True,
    }
    # Nothing left: a further settlement is refused on both sides.
    refused(record(alpha, bravo, ref(), 1), "settlement_invalid")
    refused(record(bravo, alpha, ref(), 0), "settlement_invalid")


def test_a_balance_left_by_rounding_alone_settles_in_full_from_the_zero_side(
    pair: tuple[Node, Node],
) -> None:
    alpha, bravo = pair
    # A fresh link, or the one the scenario before settled to zero.
    assert balances(alpha, bravo) == (0, 0)
    pay(alpha, "ann", "bravo/bob", 2)  # 4/3 of bravo's units: 1 arrives
    pay(bravo, "bob", "alpha/ann", 1)  # 3/2 of alpha's units: 1 arrives
    settled(alpha, bravo)
    # alpha owes one unit and bravo is owed nothing: rounding's remainder, the case.
    assert balances(alpha, bravo) == (1, 0)
    # bravo settles in full by sending nothing; alpha's whole balance goes.
    reference = ref()
    r = record(alpha, bravo, reference, 1)
    assert (r.status_code, r.json()["status"]) == (201, "agreed"), r.text
    r = record(bravo, alpha, reference, 0)
    assert (r.status_code, r.json()["status"]) == (201, "executed"), r.text
    assert balances(alpha, bravo) == (0, 0)
    settled(alpha, bravo)
    assert alpha.reconcile(bravo)["mirror"]["tracked_remainder"] == "0"


def test_each_mistake_has_its_own_code_and_the_reference_stays_usable(
    pair: tuple[Node, Node],
) -> None:
    alpha, bravo = pair
    pay(alpha, "ann", "bravo/bob", 30)  # 20 arrive
    settled(alpha, bravo)
    before = balances(alpha, bravo)
    assert before[1] <= -20
    reference = ref()
    # The wrong order: bravo executes before alpha recorded it. Answered at once.
    first_key = str(uuid.uuid4())
    body = refused(record(bravo, alpha, reference, 6, first_key), "settlement_not_recorded")
    assert body["refused_by"] == "alpha"
    assert status(bravo, alpha, reference) == "refused"
    # An amount that does not correspond at the rate: 6 of bravo's units are 9 of alpha's.
    assert record(alpha, bravo, reference, 8).status_code == 201
    body = refused(record(bravo, alpha, reference, 6), "settlement_amount_mismatch")
    assert (body["recorded"], body["received"]) == (8, 9)
    assert balances(alpha, bravo) == before
    # alpha corrects its record under the same reference; bravo records it again.
    assert cancel(alpha, bravo, reference).json()["status"] == "cancelled"
    assert record(alpha, bravo, reference, 9).json()["status"] == "agreed"
    r = record(bravo, alpha, reference, 6)
    assert (r.status_code, r.json()["status"]) == (201, "executed"), r.text
    assert balances(alpha, bravo) == (before[0] - 9, before[1] + 6)
    # The first request, retried with its key, still gets its own answer: the refusal of what
    # it recorded, not the later recording's success.
    again = record(bravo, alpha, reference, 6, first_key)
    assert (again.status_code, again.json()["code"]) == (409, "settlement_not_recorded"), again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    # Reuse of an executed reference.
    refused(record(bravo, alpha, reference, 6), "settlement_exists")
    refused(record(alpha, bravo, reference, 9), "settlement_exists")
    # Past zero, on either side; nothing is recorded, so the reference is free.
    owing, owed = balances(alpha, bravo)
    second = ref()
    refused(record(bravo, alpha, second, -owed + 1), "settlement_invalid")
    refused(record(alpha, bravo, second, owing + 1), "settlement_invalid")
    assert record(alpha, bravo, second, owing).status_code == 201
    assert record(bravo, alpha, second, -owed).json()["status"] == "executed"
    assert balances(alpha, bravo) == (0, 0)
    settled(alpha, bravo)


def test_a_settlement_can_be_cancelled_until_it_is_executed(pair: tuple[Node, Node]) -> None:
    alpha, bravo = pair
    pay(alpha, "ann", "bravo/bob", 30)
    settled(alpha, bravo)
    before = balances(alpha, bravo)
    reference = ref()
    refused(record(bravo, alpha, reference, 4), "settlement_not_recorded")
    r = cancel(bravo, alpha, reference, "alpha has not recorded it")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["status_reason"]) == (
        "cancelled",
        "alpha has not recorded it",
    )
    body = refused(cancel(bravo, alpha, reference), "settlement_not_cancellable")
    assert body["settlement_status"] == "cancelled"
    r = bravo.request("GET", "/audit", bravo.operator, params={"action": "settlement.cancelled"})
    assert r.status_code == 200, r.text
    assert any(e["reason"] == "alpha has not recorded it" for e in r.json()["items"]), r.text
    # Recorded again, in the right order, it executes; then neither side can cancel it.
    assert record(alpha, bravo, reference, 6).status_code == 201
    assert record(bravo, alpha, reference, 4).json()["status"] == "executed"
    assert balances(alpha, bravo) == (before[0] - 6, before[1] + 4)
    refused(cancel(bravo, alpha, reference), "settlement_not_cancellable")
    refused(cancel(alpha, bravo, reference), "settlement_not_cancellable")
    r = cancel(alpha, bravo, ref())
    assert (r.status_code, r.json()["code"]) == (404, "settlement_not_found"), r.text
    settled(alpha, bravo)


def test_when_the_peer_cannot_be_asked_the_settlement_is_sent_and_finishes_later(
    pair: tuple[Node, Node],
) -> None:
    alpha, bravo = pair
    pay(alpha, "ann", "bravo/bob", 30)
    settled(alpha, bravo)
    before = balances(alpha, bravo)
    reference = ref()
    assert record(alpha, bravo, reference, 6).status_code == 201
    alpha.kill()
    try:
        r = record(bravo, alpha, reference, 4)
        assert (r.status_code, r.json()["status"]) == (202, "sent"), r.text
    finally:
        alpha.start()
    wait(lambda: status(bravo, alpha, reference) == "executed", 60)
    assert status(alpha, bravo, reference) == "executed"
    assert balances(alpha, bravo) == (before[0] - 6, before[1] + 4)
    settled(alpha, bravo)
