"""Keys and privacy between networks, through separate service processes.

A rotated key retires when the rotation says: after its grace period, or at once when its owner
says it is compromised; a notice must be signed by the new key too. A signed request that this
network cannot trust gets one answer, whatever the reason, so a caller cannot learn who is
linked to whom. A network may keep its descriptor private: then it is not found, exactly as a
network that does not exist, and its operators still read it. Reading a descriptor writes
nothing.
"""

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualcredit.federation import crypto
from tests.federation.checks import settled, signed_post, stolen_signer
from tests.federation.cluster import Cluster, Node, auth


@pytest.fixture(scope="module")
def cluster(server_url: str) -> Iterator[Cluster]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-keys-")))
    try:
        alpha, bravo = c.add("alpha"), c.add("bravo")
        c.connect(alpha, bravo)
        alpha.member("ann")
        bravo.member("bob")
        yield c
    finally:
        c.close()


def _confirm(node: Node, peer: Node, signer: crypto.Signer) -> httpx.Response:
    """A call `peer` makes to `node` as a linked network (confirming the link's rate), signed
    by `signer`: accepted (200) while the key is trusted."""
    r = peer.request("GET", f"/federation/links/{node.name}", peer.operator)
    assert r.status_code == 200, r.text
    return signed_post(node, signer, "/link", crypto.canonical({"rate": r.json()["rate"]}))


def _rotate(node: Node, **body: Any) -> dict[str, Any]:
    r = node.request("POST", "/federation/keys/rotate", node.operator, json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _peer_keys(node: Node, peer: Node) -> dict[str, dict[str, Any]]:
    r = node.request("GET", f"/federation/links/{peer.name}", node.operator)
    assert r.status_code == 200, r.text
    return {k["key_id"]: k for k in r.json()["peer_keys"]}


def _refusal(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    """An answer as a caller sees it: status, body bytes and the headers that are not the
    moment's (date), the request's own name (x-request-id) or the body's length."""
    own = {"date", "x-request-id", "content-length"}
    headers = {k: v for k, v in r.headers.items() if k not in own}
    return r.status_code, r.content, headers


def test_a_rotated_key_works_through_its_grace_period_then_never_again(
    cluster: Cluster,
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    old = stolen_signer(alpha)
    rotated = _rotate(alpha, grace_seconds=4, reason="yearly rotation")
    assert rotated["retired_key_id"] == old.key_id
    assert rotated["peers"] == {"bravo": "registered"}
    # Within the grace period the old key still works (a request signed before the rotation
    # and still on its way, a worker that has not noticed yet)...
    assert _confirm(bravo, alpha, old).status_code == 200
    # ...but announces no key: whoever else holds it could otherwise rotate to a key of theirs.
    r = _notice(bravo, old)
    assert (r.status_code, r.json()["code"]) == (409, "peer_key_retired"), r.text
    # alpha itself signs with the new key only: trades carry on.
    assert alpha.pay("ann", "bravo/bob", 3).status_code == 201
    known = _peer_keys(bravo, alpha)
    assert known[old.key_id]["expires_at"] is not None
    assert known[rotated["key_id"]]["expires_at"] is None
    # After it, bravo refuses the old key, as it refuses any key it does not know.
    retire_at = datetime.fromisoformat(rotated["retire_at"])
    time.sleep(max(0.0, (retire_at - datetime.now(UTC)).total_seconds()) + 1.5)
    r = _confirm(bravo, alpha, old)
    assert (r.status_code, r.json()["code"]) == (401, "peer_unknown"), r.text
    assert alpha.pay("ann", "bravo/bob", 4).status_code == 201
    settled(alpha, bravo)


def test_a_compromised_key_is_refused_at_once_and_never_trusted_again(
    cluster: Cluster,
) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    stolen = stolen_signer(bravo)
    rotated = _rotate(bravo, compromised=True, grace_seconds=3600, reason="laptop stolen")
    assert rotated["peers"] == {"alpha": "registered"}
    r = _confirm(alpha, bravo, stolen)
    assert (r.status_code, r.json()["code"]) == (401, "peer_unknown"), r.text
    # bravo signs with its new key: trades carry on both ways.
    assert bravo.pay("bob", "alpha/ann", 2).status_code == 201
    assert alpha.pay("ann", "bravo/bob", 2).status_code == 201
    # The thief cannot announce a key of their own with the retired key either, and alpha's
    # operator cannot trust the retired key again by mistake.
    assert _notice(alpha, stolen).json()["code"] == "peer_unknown"
    public = crypto.b64e(stolen.private_key.public_key().public_bytes_raw())
    r = alpha.request(
        "POST",
        "/federation/links/bravo/peer-keys",
        alpha.operator,
        json={"key_id": stolen.key_id, "public_key": public},
    )
    assert (r.status_code, r.json()["code"]) == (409, "peer_key_retired"), r.text
    assert _confirm(alpha, bravo, stolen).status_code == 401
    settled(alpha, bravo)


def _notice(
    node: Node, old: crypto.Signer, *, new: Ed25519PrivateKey | None = None, signs: Any = None
) -> httpx.Response:
    """A rotation notice to `node`, signed by `old`; its proof signed by `signs` (by default the
    new key itself)."""
    new = new or Ed25519PrivateKey.generate()
    public = crypto.b64e(new.public_key().public_bytes_raw())
    key_id = f"{old.network_code}.{uuid.uuid4().hex[:12]}"
    retire_at = int(time.time()) + 60
    statement = crypto.key_base(
        old.network_code, node.name, old.key_id, key_id, public, str(retire_at), False
    )
    proof = crypto.b64e((signs or new).sign(statement))
    body = {
        "key_id": key_id,
        "public_key": public,
        "retire_at": retire_at,
        "compromised": False,
        "proof": proof,
    }
    return signed_post(node, old, "/keys", crypto.canonical(body))


def test_a_rotation_notice_must_be_signed_by_the_new_key(cluster: Cluster) -> None:
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    current = stolen_signer(alpha)
    before = _peer_keys(bravo, alpha)
    r = _notice(bravo, current, signs=Ed25519PrivateKey.generate())
    assert (r.status_code, r.json()["code"]) == (422, "peer_key_proof_invalid"), r.text
    # Nothing changed: no new key, and the current one keeps no expiry.
    assert _peer_keys(bravo, alpha) == before
    assert _confirm(bravo, alpha, current).status_code == 200


def _transfer() -> bytes:
    return crypto.canonical(
        {
            "transfer_id": str(uuid.uuid4()),
            "kind": "federation",
            "payer": "alpha/ann",
            "payee": "bravo/bob",
            "amount_sent": 1,
            "amount_received": 1,
            "rate": {"num": 1, "den": 1, "version": 1},
            "expires_at": "2099-01-01T00:00:00Z",
            "description": "",
            "reference": None,
        }
    )


def test_every_untrusted_signed_request_gets_the_same_answer(cluster: Cluster) -> None:
    """Whatever makes a signed request untrusted, the answer is the same, byte for byte and
    header for header: otherwise a stranger could tell whether bravo is linked to alpha, or to
    anyone, by the words of the refusal."""
    alpha, bravo = cluster.nodes["alpha"], cluster.nodes["bravo"]
    current = stolen_signer(alpha)
    # A key bravo's operator registered for alpha and then revoked.
    revoked_key = Ed25519PrivateKey.generate()
    revoked = crypto.Signer("alpha", "alpha.revoked", revoked_key)
    r = bravo.request(
        "POST",
        "/federation/links/alpha/peer-keys",
        bravo.operator,
        json={
            "key_id": revoked.key_id,
            "public_key": crypto.b64e(revoked_key.public_key().public_bytes_raw()),
        },
    )
    assert r.status_code == 200, r.text
    r = bravo.request(
        "POST", f"/federation/links/alpha/peer-keys/{revoked.key_id}/revoke", bravo.operator
    )
    assert r.status_code == 200, r.text
    # A key alpha rotated away at once (it is on record at bravo, expired).
    expired = current
    _rotate(alpha, compromised=True, reason="test: an expired key")
    assert _confirm(bravo, alpha, stolen_signer(alpha)).status_code == 200

    untrusted = {
        "no link": crypto.Signer("nobody", "nobody.1", Ed25519PrivateKey.generate()),
        "key not registered": crypto.Signer("alpha", "alpha.unknown", revoked_key),
        "key revoked": revoked,
        "key expired": expired,
        # alpha's current key id, signed by someone without its private key.
        "signature does not verify": crypto.Signer(
            "alpha", stolen_signer(alpha).key_id, Ed25519PrivateKey.generate()
        ),
    }
    answers = {
        why: _refusal(signed_post(bravo, signer, "/transfers", _transfer()))
        for why, signer in untrusted.items()
    }
    first = answers["no link"]
    assert first[0] == 401
    differ = {why: answer for why, answer in answers.items() if answer != first}
    assert not differ, (first, differ)
    problem = httpx.Response(401, content=first[1]).json()
    assert problem["code"] == "peer_unknown"
    assert "alpha" not in first[1].decode()
    assert "nobody" not in first[1].decode()

    # A network that does not exist here answers in the same words (its path is its own).
    nowhere = crypto.Signer("alpha", stolen_signer(alpha).key_id, Ed25519PrivateKey.generate())
    r = signed_post(bravo, nowhere, "/transfers", _transfer(), to="nowhere", network="nowhere")
    status, _, headers = _refusal(r)
    assert (status, headers) == (first[0], first[2])
    unknown = r.json()
    assert unknown.pop("instance") == "/federation/v1/networks/nowhere/transfers"
    problem.pop("instance")
    assert unknown == problem


def test_a_private_descriptor_is_not_found_as_an_unknown_network_is(cluster: Cluster) -> None:
    alpha = cluster.nodes["alpha"]
    url = f"{alpha.url}/federation/v1/networks"
    public = httpx.get(f"{url}/alpha/descriptor", timeout=10)
    assert public.status_code == 200, public.text
    # A change of the setting needs a reason, kept on record.
    r = alpha.request("PATCH", "", alpha.operator, json={"descriptor_public": False})
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    r = alpha.request(
        "PATCH", "", alpha.operator, json={"descriptor_public": False, "reason": "invite only"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["descriptor_public"] is False
    try:
        hidden = httpx.get(f"{url}/alpha/descriptor", timeout=10)
        unknown = httpx.get(f"{url}/nowhere/descriptor", timeout=10)
        assert hidden.status_code == unknown.status_code == 404
        assert _refusal(hidden)[2] == _refusal(unknown)[2]
        same = unknown.content.replace(b"nowhere", b"X")
        assert hidden.content.replace(b"alpha", b"X") == same, (hidden.text, unknown.text)
        # Its operators still read it, to hand to a peer's operator out of band.
        r = alpha.request("GET", "/federation/identity", alpha.operator)
        assert r.status_code == 200, r.text
        assert r.json()["public"] is False
        assert r.json()["keys"] == public.json()["keys"]
        # Linked peers are not affected: value still crosses.
        assert alpha.pay("ann", "bravo/bob", 1).status_code == 201
    finally:
        r = alpha.request(
            "PATCH", "", alpha.operator, json={"descriptor_public": True, "reason": "open again"}
        )
        assert r.status_code == 200, r.text
    assert httpx.get(f"{url}/alpha/descriptor", timeout=10).status_code == 200


def test_reading_a_descriptor_writes_nothing(cluster: Cluster) -> None:
    """A network without a key (its operator never made one) is not published, and nobody's
    read makes it one: the first key is an operator's act."""
    alpha = cluster.nodes["alpha"]
    code = f"quiet-{uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{alpha.url}/v1/networks",
        json={"code": code, "name": "Quiet", "unit_name": "u", "unit_symbol": "q", "scale": 0},
        headers=auth(alpha.platform),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    keys = "SELECT count(*) AS n FROM node_keys k JOIN networks n ON n.id = k.network_id"
    keys += " WHERE n.code = $1"
    for _ in range(2):
        r = httpx.get(f"{alpha.url}/federation/v1/networks/{code}/descriptor", timeout=10)
        assert (r.status_code, r.json()["code"]) == (404, "network_not_found"), r.text
    assert asyncio.run(alpha.fetch(keys, code))[0]["n"] == 0


def test_a_stale_request_is_told_so_whoever_signs_it(cluster: Cluster) -> None:
    """Freshness is checked before any record of links or keys is read: an old request from a
    stranger and one from a linked network get the same answer."""
    bravo = cluster.nodes["bravo"]
    signers = (
        crypto.Signer("nobody", "nobody.1", Ed25519PrivateKey.generate()),
        stolen_signer(cluster.nodes["alpha"]),
    )
    old = int(time.time()) - 3600
    answers = [
        _refusal(signed_post(bravo, s, "/transfers", _transfer(), created=old)) for s in signers
    ]
    assert answers[0] == answers[1]
    assert b'"code":"peer_signature_stale"' in answers[0][1]
