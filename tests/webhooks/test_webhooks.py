"""Webhooks through a real service process and a real receiver process.

The service (`mutualcredit serve`, its own database) delivers to receiver.py, which verifies
every delivery with the `standardwebhooks` package. Retries are scaled down
(MUTUALCREDIT_WEBHOOK_RETRY_SCALE=0.02: 0.1 s, 6 s, 36 s, ...) so that a test sees several."""

import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.federation.checks import wait
from tests.federation.cluster import Cluster, Node, auth, free_port
from tests.webhooks.conftest import Receiver

SETTINGS = {
    "MUTUALCREDIT_WEBHOOK_RETRY_SCALE": "0.02",
    "MUTUALCREDIT_WEBHOOK_INTERVAL_SECONDS": "0.1",
    "MUTUALCREDIT_WEBHOOK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture(scope="module")
def node(server_url: str) -> Iterator[Node]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-hooks-")), **SETTINGS)
    try:
        n = c.add("hk")
        for code in ("ann", "bob"):
            n.member(code)
        yield n
    finally:
        c.close()


def create(node: Node, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "event_types": ["trade.posted"], **fields}
    r = node.request("POST", "/webhooks", node.operator, json=body)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def made(node: Node, url: str, key: str) -> httpx.Response:
    """POST …/webhooks with an Idempotency-Key."""
    return httpx.post(
        f"{node.base}/webhooks",
        json={"url": url, "event_types": ["trade.posted"]},
        headers={**auth(node.operator), "Idempotency-Key": key},
        timeout=30,
    )


def disable(node: Node, endpoint: dict[str, Any]) -> None:
    r = node.request("PATCH", f"/webhooks/{endpoint['id']}", node.operator, json={"enabled": False})
    assert r.status_code == 200, r.text


def attempts(node: Node, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    r = node.request("GET", f"/webhooks/{endpoint['id']}/attempts", node.operator)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return list(reversed(items))


def pay(node: Node, amount: int = 1) -> str:
    r = node.pay("ann", "bob", amount)
    assert r.status_code == 201, r.text
    trade_id: str = r.json()["id"]
    return trade_id


def posted(got: list[dict[str, Any]], status: int = 204) -> list[dict[str, Any]]:
    return [g for g in got if g["status"] == status and g["body"]["type"] == "trade.posted"]


def test_trades_are_delivered_signed_in_order(node: Node, receivers: list[Receiver]) -> None:
    """Three trades reach the receiver as three deliveries it verifies with the secret shown
    once, in seq order, each with the event's id as webhook-id; the log has each attempt."""
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    assert endpoint["secret"].startswith("whsec_")
    receiver.control(secrets=[endpoint["secret"]])
    trades = [pay(node, n) for n in (1, 2, 3)]
    wait(lambda: len(receiver.received()) >= 3)
    got = receiver.received()
    assert [g["verified_by"] for g in got] == [[0], [0], [0]]
    assert [g["body"]["data"]["trade"]["id"] for g in got] == trades
    assert [g["id"] for g in got] == [g["body"]["id"] for g in got]
    seqs = [g["body"]["seq"] for g in got]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    log = attempts(node, endpoint)
    assert [(a["outcome"], a["status_code"], a["attempt"]) for a in log] == [
        ("delivered", 204, 1)
    ] * 3
    # The secret is never shown again.
    r = node.request("GET", f"/webhooks/{endpoint['id']}", node.operator)
    assert "secret" not in r.json()
    disable(node, endpoint)


def test_receiver_down_then_up(node: Node, receivers: list[Receiver]) -> None:
    """Nothing listens when the trade is made: the delivery fails and is retried on its
    schedule, and arrives once the receiver is up."""
    receiver = Receiver()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    pay(node)
    wait(lambda: len(attempts(node, endpoint)) >= 1)
    receiver.start(endpoint["secret"])
    wait(lambda: len(posted(receiver.received())) == 1)
    log = attempts(node, endpoint)
    assert log[0]["outcome"] == "retrying"
    assert log[0]["error"] == "connection failed"
    assert log[-1]["outcome"] == "delivered"
    assert posted(receiver.received())[0]["verified_by"] == [0]
    disable(node, endpoint)


def test_500_then_200_is_retried_with_the_same_id(node: Node, receivers: list[Receiver]) -> None:
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]], fail=2)
    pay(node)
    wait(lambda: len(receiver.received()) == 3)
    got = receiver.received()
    assert [g["status"] for g in got] == [500, 500, 204]
    assert len({g["id"] for g in got}) == 1
    assert all(g["verified_by"] == [0] for g in got)
    log = attempts(node, endpoint)
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in log] == [
        (1, "retrying", 500),
        (2, "retrying", 500),
        (3, "delivered", 204),
    ]
    disable(node, endpoint)


def test_a_burst_goes_in_batches_in_order_and_a_failure_stops_its_batch(
    node: Node, receivers: list[Receiver]
) -> None:
    """200 trades wait while the endpoint is disabled, then go out when it is enabled again:
    in batches (a batch's attempts are recorded together, in one transaction), in seq order,
    each once. The receiver fails the 51st: its batch stops there, nothing after it is sent
    until it is retried (the same webhook-id), and the rest follow in order."""
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]], **{"pass": 50, "fail": 1})
    disable(node, endpoint)
    trades = []
    for n in range(200):
        payer, payee = ("ann", "bob") if n % 2 == 0 else ("bob", "ann")
        r = node.pay(payer, payee, 1)
        assert r.status_code == 201, r.text
        trades.append(r.json()["id"])
    r = node.request("PATCH", f"/webhooks/{endpoint['id']}", node.operator, json={"enabled": True})
    assert r.status_code == 200, r.text
    wait(lambda: len(posted(receiver.received())) >= 200, seconds=60)
    time.sleep(1)  # long enough for a duplicate to arrive, were one sent
    got = receiver.received()
    assert [g["status"] for g in got] == [204] * 50 + [500] + [204] * 150
    # The failed one was sent again (with the same id) before anything after it.
    assert got[50]["id"] == got[51]["id"]
    delivered = [g for g in got if g["status"] == 204]
    assert [g["body"]["data"]["trade"]["id"] for g in delivered] == trades
    assert len({g["id"] for g in delivered}) == 200
    seqs = [g["body"]["seq"] for g in delivered]
    assert seqs == sorted(seqs)
    assert all(g["verified_by"] == [0] for g in got)
    r = node.request(
        "GET", f"/webhooks/{endpoint['id']}/attempts", node.operator, params={"limit": 500}
    )
    log = list(reversed(r.json()["items"]))
    assert [(a["seq"], a["attempt"], a["outcome"]) for a in log] == [
        (seq, 1, "delivered") for seq in seqs[:50]
    ] + [(seqs[50], 1, "retrying"), (seqs[50], 2, "delivered")] + [
        (seq, 1, "delivered") for seq in seqs[51:]
    ]
    # The first batch: the 50 delivered and the failure, recorded in one transaction.
    assert len({a["attempted_at"] for a in log[:51]}) == 1
    # Whatever the batches after it, there were far fewer than events.
    assert len({a["attempted_at"] for a in log}) < 20
    disable(node, endpoint)


def test_redirects_are_not_followed(node: Node, receivers: list[Receiver]) -> None:
    receiver, elsewhere = Receiver().start(), Receiver().start()
    receivers += [receiver, elsewhere]
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]], redirect=elsewhere.url)
    pay(node)
    wait(lambda: len(attempts(node, endpoint)) >= 1)
    first = attempts(node, endpoint)[0]
    assert (first["status_code"], first["outcome"]) == (302, "retrying")
    assert first["error"] == "redirect not followed"
    assert elsewhere.received() == []
    disable(node, endpoint)


def test_a_huge_answer_is_not_read_and_a_slow_one_times_out(
    node: Node, receivers: list[Receiver]
) -> None:
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]], huge=True)
    pay(node)
    wait(lambda: len(attempts(node, endpoint)) >= 1)
    first = attempts(node, endpoint)[0]
    assert (first["status_code"], first["outcome"]) == (200, "delivered")
    assert first["latency_ms"] < 2000
    receiver.control(huge=False, delay=5)
    pay(node)
    wait(lambda: len(attempts(node, endpoint)) >= 2)
    second = attempts(node, endpoint)[1]
    assert (second["error"], second["outcome"]) == ("timed out", "retrying")
    disable(node, endpoint)


def test_secret_rotation_while_deliveries_are_pending(
    node: Node, receivers: list[Receiver]
) -> None:
    """A delivery failing when the secret is rotated is signed, when it gets through, by the
    new secret and the old one: a receiver still on the old secret verifies it, and so does one
    on the new."""
    receiver = Receiver().start()
    receivers.append(receiver)
    key = str(uuid.uuid4())
    r = made(node, receiver.url, key)
    assert r.status_code == 201, r.text
    endpoint = r.json()
    old = endpoint["secret"]
    receiver.control(secrets=[old], fail=1000)
    pay(node)
    wait(lambda: len(receiver.received()) >= 1)
    r = node.request("POST", f"/webhooks/{endpoint['id']}/rotate-secret", node.operator)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old
    assert r.json()["secret_version"] == 2
    receiver.control(secrets=[old, new], fail=0)
    wait(lambda: len(posted(receiver.received())) == 1, seconds=60)
    before = [g for g in receiver.received() if g["status"] == 500]
    assert all(g["verified_by"] == [0] for g in before)
    (delivered,) = posted(receiver.received())
    assert delivered["verified_by"] == [0, 1]
    assert delivered["signatures"] == 2
    # A replay of the request that made the endpoint answers without the secret.
    r = made(node, receiver.url, key)
    assert r.status_code == 201
    assert r.json()["secret"] is None
    assert r.headers["idempotent-replayed"] == "true"
    disable(node, endpoint)


def test_manual_redelivery(node: Node, receivers: list[Receiver]) -> None:
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]])
    pay(node)
    wait(lambda: len(receiver.received()) == 1)
    first = receiver.received()[0]
    seq = first["body"]["seq"]
    r = node.request(
        "POST", f"/webhooks/{endpoint['id']}/redeliveries", node.operator, json={"seq": seq}
    )
    assert r.status_code == 202, r.text
    wait(lambda: len(receiver.received()) == 2)
    again = receiver.received()[1]
    assert again["id"] == first["id"]
    assert again["verified_by"] == [0]
    assert attempts(node, endpoint)[-1]["redelivery"] is True
    r = node.request(
        "POST", f"/webhooks/{endpoint['id']}/redeliveries", node.operator, json={"seq": 10**9}
    )
    assert r.status_code == 404
    assert r.json()["code"] == "event_not_found"
    disable(node, endpoint)


def test_management_refusals(node: Node) -> None:
    r = node.request(
        "POST", "/webhooks", node.operator, json={"url": "https://x.example", "event_types": ["x"]}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_event_type"
    r = node.request("GET", f"/webhooks/{uuid.uuid4()}", node.operator)
    assert r.status_code == 404
    assert r.json()["code"] == "webhook_not_found"
    r = node.request(
        "POST", "/webhooks", node.operator, json={"url": "https://x.example", "account": "nobody"}
    )
    assert r.status_code == 404
    assert r.json()["code"] == "account_not_found"
    r = node.request(
        "POST", "/webhooks", node.members["ann"], json={"url": "https://x.ex", "account": "bob"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


def test_two_processes_on_one_database_deliver_each_event_once(
    node: Node, receivers: list[Receiver]
) -> None:
    """A second service process on the same database: both run the delivery loops, and every
    event arrives once, in seq order."""
    second = Node(
        name=node.name,
        server_url=node.server_url,
        database_url=node.database_url,
        port=free_port(),
        settings=node.settings,
        log_path=node.log_path.with_name("hk-second.log"),
    )
    second.start()
    try:
        receiver = Receiver().start()
        receivers.append(receiver)
        endpoint = create(node, receiver.url)
        receiver.control(secrets=[endpoint["secret"]])
        trades = [pay(node) for _ in range(30)]
        wait(lambda: len(receiver.received()) >= 30, seconds=60)
        time.sleep(1)  # long enough for a duplicate to arrive, were one sent
        got = receiver.received()
        assert len(got) == 30
        assert [g["body"]["data"]["trade"]["id"] for g in got] == trades
        assert all(g["verified_by"] == [0] for g in got)
        disable(node, endpoint)
    finally:
        second.stop()


@pytest.fixture(scope="module")
def strict(server_url: str) -> Iterator[Node]:
    """A service that may not call private addresses, and disables an endpoint after about
    four seconds of failures (at its next failed attempt)."""
    c = Cluster(
        server_url,
        Path(tempfile.mkdtemp(prefix="mc-hooks-strict-")),
        MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE="false",
        MUTUALCREDIT_WEBHOOK_DISABLE_AFTER_DAYS="0.00005",
        **SETTINGS,
    )
    try:
        n = c.add("st")
        for code in ("ann", "bob"):
            n.member(code)
        yield n
    finally:
        c.close()


def test_private_urls_are_refused_when_saved_and_at_connect_time(
    strict: Node, receivers: list[Receiver]
) -> None:
    for url in ("http://127.0.0.1:9/", "http://10.0.0.1/", "http://localhost/", "http://[::1]/"):
        r = strict.request("POST", "/webhooks", strict.operator, json={"url": url})
        assert r.status_code == 422, url
        assert r.json()["code"] == "webhook_url_not_allowed"
    # A name is checked when connected to: this machine's own name resolves to loopback.
    name = socket.gethostname()
    assert not ipaddress.ip_address(socket.gethostbyname(name)).is_global
    receiver = Receiver(host=name).start()
    receivers.append(receiver)
    endpoint = create(strict, receiver.url)
    pay(strict)
    wait(lambda: len(attempts(strict, endpoint)) >= 1)
    assert attempts(strict, endpoint)[0]["error"] == "address not allowed"
    assert receiver.received() == []
    # Failing for longer than MUTUALCREDIT_WEBHOOK_DISABLE_AFTER_DAYS: disabled, on record.
    wait(
        lambda: (
            strict.request("GET", f"/webhooks/{endpoint['id']}", strict.operator).json()["status"]
            == "disabled"
        ),
        seconds=40,
    )
    r = strict.request("GET", f"/webhooks/{endpoint['id']}", strict.operator)
    reason = r.json()["status_reason"]
    assert reason.startswith("no successful delivery since")
    r = strict.request("GET", "/audit", strict.operator, params={"limit": 500})
    (record,) = [a for a in r.json()["items"] if a["action"] == "webhook_endpoint.disabled"]
    assert (record["actor"], record["reason"]) == ("service:webhooks", reason)
    assert record["after"] == {"status": "disabled", "status_reason": reason}

    # And an event says so, in the feed (whence every endpoint subscribed to it gets it).
    def disabled() -> list[dict[str, Any]]:
        r = strict.request("GET", "/events", strict.operator, params={"types": "webhook.disabled"})
        found: list[dict[str, Any]] = r.json()["items"]
        return found

    wait(lambda: len(disabled()) == 1)
    (event,) = disabled()
    assert event["data"]["webhook"] == {
        "id": endpoint["id"],
        "url": receiver.url,
        "description": "",
        "account": None,
        "member_account": None,
        "status": "disabled",
        "status_reason": reason,
        "changed_by": "service:webhooks",
    }


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_receiver_verifies_a_delivery(node: Node, tmp_path: Path) -> None:
    """The receiver of the README's Webhooks section, run as written, verifies a delivery."""
    section = README.read_text().split("## Webhooks\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "receiver.py"
    script.write_text(code)
    out = tmp_path / "out.txt"
    port = free_port()
    r = node.request("POST", "/webhooks", node.operator, json={"url": f"http://127.0.0.1:{port}/"})
    endpoint = r.json()
    env = {**os.environ, "WEBHOOK_SECRET": endpoint["secret"], "PORT": str(port)}
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=sink)  # noqa: S603
    try:
        trade = pay(node, 7)
        wait(lambda: trade in out.read_text())
        assert out.read_text().startswith("trade.posted evt_hk_")
        log = attempts(node, endpoint)
        assert log[-1]["status_code"] == 204
    finally:
        proc.kill()
        proc.wait(timeout=10)
        disable(node, endpoint)


def test_a_service_killed_mid_delivery_sends_it_again_with_the_same_id(
    node: Node, receivers: list[Receiver]
) -> None:
    """kill -9 while the receiver holds a delivery: once the lease runs out (twice the
    timeout, and 30 s), the restarted service sends the same event again, with the same
    webhook-id, and goes on in order."""
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]], delay=1.5)
    first = pay(node)
    wait(lambda: len(receiver.received()) == 1)
    node.kill()
    receiver.control(delay=0)
    node.start()
    second = pay(node)
    wait(lambda: len(posted(receiver.received())) == 3, seconds=90)
    got = receiver.received()
    assert [g["body"]["data"]["trade"]["id"] for g in got] == [first, first, second]
    assert got[0]["id"] == got[1]["id"]
    assert all(g["verified_by"] == [0] for g in got)
    assert [(a["seq"], a["outcome"]) for a in attempts(node, endpoint)] == [
        (got[1]["body"]["seq"], "delivered"),
        (got[2]["body"]["seq"], "delivered"),
    ]
    disable(node, endpoint)


def test_a_members_endpoint_gets_its_own_events_in_its_view(
    node: Node, receivers: list[Receiver]
) -> None:
    """A member registers an endpoint with its own key: it receives the events about its own
    account only (trades it is party to, its limits), with no other account's balance, signed
    with the secret shown once; other members never see it, and it cannot be widened."""
    for code in ("cy", "dot"):
        if code not in node.members:
            node.member(code)
    ann, bob = node.members["ann"], node.members["bob"]
    receiver = Receiver().start()
    receivers.append(receiver)
    r = node.request("POST", "/webhooks", ann, json={"url": receiver.url})
    assert r.status_code == 201, r.text
    endpoint = r.json()
    assert (endpoint["account"], endpoint["member_account"]) == ("ann", "ann")
    assert endpoint["event_types"] is None
    receiver.control(secrets=[endpoint["secret"]])

    mine = pay(node, 3)  # ann pays bob
    r = node.pay("bob", "cy", 4)  # not ann's
    assert r.status_code == 201, r.text
    limits = {"credit_limit": 5000, "balance_max": None, "reason": "trusted till"}
    for code in ("bob", "ann"):
        r = node.request("PUT", f"/accounts/{code}/limits", node.operator, json=limits)
        assert r.status_code == 200, r.text
    r = node.pay("cy", "ann", 5)
    assert r.status_code == 201, r.text
    theirs = r.json()["id"]
    wait(lambda: len(receiver.received()) >= 3)
    time.sleep(1)  # long enough for an event about another account to arrive, were one sent
    got = receiver.received()
    assert [g["body"]["type"] for g in got] == [
        "trade.posted",
        "account.limits_changed",
        "trade.posted",
    ]
    assert all(g["verified_by"] == [0] for g in got)
    assert [g["body"]["data"]["trade"]["id"] for g in (got[0], got[2])] == [mine, theirs]
    assert all("ann" in g["body"]["accounts"] for g in got)
    balances = [g["body"]["data"]["balances_after"] for g in (got[0], got[2])]
    assert [list(b) for b in balances] == [["ann"], ["ann"]]
    assert got[1]["body"]["data"]["account"] == "ann"

    # Another member: not there. The member itself: its own account only, for good.
    path = f"/webhooks/{endpoint['id']}"
    for method, body in (("GET", None), ("PATCH", {"description": "mine"})):
        r = node.request(method, path, bob, json=body)
        assert (r.status_code, r.json()["code"]) == (404, "webhook_not_found"), r.text
    r = node.request("GET", f"{path}/attempts", bob)
    assert r.status_code == 404, r.text
    assert [e["id"] for e in node.request("GET", "/webhooks", bob).json()] == []
    assert endpoint["id"] in [e["id"] for e in node.request("GET", "/webhooks", ann).json()]
    for account in ("bob", None):
        r = node.request("PATCH", path, ann, json={"account": account})
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
        r = node.request("PATCH", path, node.operator, json={"account": account})
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
    r = node.request("POST", "/webhooks", ann, json={"url": receiver.url, "account": "bob"})
    assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
    # Not even by hand in SQL: the database keeps a member's endpoint to its own account.
    with pytest.raises(asyncpg.CheckViolationError):
        asyncio.run(
            node.fetch("UPDATE webhook_endpoints SET account = 'bob' WHERE id = $1", endpoint["id"])
        )
    r = node.request("PATCH", path, ann, json={"enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["status_reason"] == "disabled by its member"


def test_a_member_has_at_most_the_endpoints_it_may_even_all_at_once(node: Node) -> None:
    """MUTUALCREDIT_WEBHOOK_MAX_PER_MEMBER (5 by default) enabled endpoints per member account,
    counted one request after the other even when they all arrive at once; a disabled one does
    not count, and enabling it again is counted."""
    if "eve" not in node.members:
        node.member("eve")
    eve = node.members["eve"]

    def register(n: int) -> httpx.Response:
        return node.request("POST", "/webhooks", eve, json={"url": f"https://eve{n}.example/"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(register, range(8)))
    assert sorted(r.status_code for r in answers) == [201] * 5 + [409] * 3
    refused = next(r for r in answers if r.status_code == 409)
    assert refused.json()["code"] == "webhook_limit_reached"
    assert refused.json()["limit"] == 5
    made = [r.json()["id"] for r in answers if r.status_code == 201]
    r = node.request("PATCH", f"/webhooks/{made[0]}", eve, json={"enabled": False})
    assert r.status_code == 200, r.text
    r = register(9)
    assert r.status_code == 201, r.text
    r = node.request("PATCH", f"/webhooks/{made[0]}", eve, json={"enabled": True})
    assert (r.status_code, r.json()["code"]) == (409, "webhook_limit_reached"), r.text
    # An operator's endpoints are not counted against the member, nor limited by it.
    r = node.request(
        "POST", "/webhooks", node.operator, json={"url": "https://op.example/", "account": "eve"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["member_account"] is None
    for endpoint in node.request("GET", "/webhooks", eve).json():
        r = node.request("PATCH", f"/webhooks/{endpoint['id']}", eve, json={"enabled": False})
        assert r.status_code == 200, r.text
