"""What every federation test checks after a scenario, and a signed call made by hand."""

import asyncio
import time
import uuid
from typing import Any

import httpx

from mutualcredit.federation import crypto
from tests.federation.cluster import Node


def wait(predicate: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def settled(*nodes: Node) -> None:
    """Waits until nothing is in flight, then checks every invariant across the nodes."""

    def idle() -> bool:
        return all(
            asyncio.run(
                n.fetch("SELECT 1 FROM transfers WHERE status IN ('prepared', 'forwarded')")
            )
            == []
            for n in nodes
        )

    wait(idle, 60)
    accepted: dict[str, dict[uuid.UUID, list[tuple[str, int]]]] = {}
    for node in nodes:
        sums = asyncio.run(
            node.fetch(
                "SELECT network_id, sum(balance) AS b, sum(pending_debits - pending_credits) AS p"
                " FROM accounts GROUP BY network_id"
            )
        )
        assert all(r["b"] == 0 and r["p"] == 0 for r in sums), (node.name, sums)
        overdue = asyncio.run(
            node.fetch("SELECT id FROM trades WHERE status = 'pending' AND expires_at < now()")
        )
        assert overdue == [], (node.name, "a hold outlived its expiry")
        rows = asyncio.run(
            node.fetch(
                "SELECT t.transfer_id, t.direction, l.peer_code, t.amount_sent,"
                " t.amount_received, tr.status AS trade_status, tr.amount"
                " FROM transfers t JOIN links l ON l.id = t.link_id"
                " LEFT JOIN trades tr ON tr.id = t.trade_id WHERE t.status = 'accepted'"
            )
        )
        for r in rows:
            # Every accepted transfer's hold is posted; a settlement in full of a zero balance
            # sends nothing and holds nothing.
            holds_nothing = r["amount_sent"] == 0 and r["trade_status"] is None
            assert r["trade_status"] == "posted" or holds_nothing, (node.name, dict(r))
            accepted.setdefault(node.name, {}).setdefault(r["transfer_id"], []).append(
                (f"{r['direction']}:{r['peer_code']}", r["amount_sent"])
            )
        # A transfer id is accepted at most once per direction at each network.
        assert all(len(v) == len({d for d, _ in v}) for v in accepted.get(node.name, {}).values())
    # Each hop accepted on one side is accepted on the other, with the same amounts.
    by_name = {n.name: n for n in nodes}
    for node in nodes:
        for transfer_id, hops in accepted.get(node.name, {}).items():
            for hop, amount in hops:
                direction, peer = hop.split(":")
                if peer not in by_name:
                    continue
                mirror = "in" if direction == "out" else "out"
                assert (f"{mirror}:{node.name}", amount) in accepted.get(peer, {}).get(
                    transfer_id, []
                ), (node.name, hop, transfer_id)
    for node in nodes:
        for other in nodes:
            links = asyncio.run(node.fetch("SELECT 1 FROM links WHERE peer_code = $1", other.name))
            if links:
                report = node.reconcile(other)
                assert report["agreed"], report
                assert report["mirror"]["holds"], report


def signed_post(
    node: Node,
    signer: crypto.Signer,
    tail: str,
    body: bytes,
    *,
    created: int | None = None,
    nonce: str | None = None,
    to: str | None = None,
    network: str | None = None,
) -> httpx.Response:
    """A signed POST to `node`, for its network (or `network`, in the path), addressed to it
    (or `to`, in MC-To)."""
    path = f"/federation/v1/networks/{network or node.name}{tail}"
    created_s = str(created if created is not None else int(time.time()))
    nonce = nonce or uuid.uuid4().hex
    receiver = to or node.name
    base = crypto.request_base("POST", path, signer.network_code, receiver, created_s, nonce, body)
    return httpx.post(
        node.url + path,
        content=body,
        headers={
            "MC-From": signer.network_code,
            "MC-To": receiver,
            "MC-Key-Id": signer.key_id,
            "MC-Created": created_s,
            "MC-Nonce": nonce,
            "MC-Signature": signer.sign(base),
            "Content-Type": "application/json",
        },
        timeout=30,
    )


def stolen_signer(node: Node) -> crypto.Signer:
    """The node's active signing key, as whoever copied its database and its secret holds it:
    a key that may sign after its owner has moved on."""
    rows = asyncio.run(
        node.fetch(
            "SELECT k.key_id, k.sealed_private_key, n.code FROM node_keys k"
            " JOIN networks n ON n.id = k.network_id WHERE k.status = 'active'"
        )
    )
    (row,) = rows
    secret = crypto.b64d(node.settings["MUTUALCREDIT_SECRET_KEY"])
    private = crypto.unseal(bytes(row["sealed_private_key"]), row["key_id"], secret)
    return crypto.Signer(network_code=row["code"], key_id=row["key_id"], private_key=private)
