"""Every node-to-node request is signed by a key the receiver registered for the sender, fresh,
never replayed, and acts only on the sender's own link. Each refusal has its own code, but for
one class: whatever makes a signature untrusted (no link, an unknown, revoked or expired key, a
signature that does not verify) is answered alike, `peer_unknown` (test_keys.py)."""

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualcredit.federation import crypto
from tests.federation.checks import signed_post
from tests.federation.cluster import Cluster, Node


@dataclass
class World:
    bank: Node
    origin: Node
    mallory: crypto.Signer  # a peer the bank really linked to
    stranger: crypto.Signer  # a key nobody registered
    origin_transfer: str  # a transfer that came to the bank over origin's link


@pytest.fixture(scope="module")
def world(server_url: str) -> Iterator[World]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-sec-")))
    try:
        bank, origin = c.add("bank"), c.add("origin")
        c.connect(origin, bank)
        origin.member("ann")
        bank.member("bob")
        r = origin.pay("ann", "bank/bob", 5)
        assert r.status_code == 201, r.text
        transfer_id = r.json()["transfer"]["transfer_id"]
        key = Ed25519PrivateKey.generate()
        public = crypto.b64e(key.public_key().public_bytes_raw())
        r = bank.request(
            "POST",
            "/federation/links",
            bank.operator,
            json={
                "peer": "mallory",
                "peer_url": "http://127.0.0.1:9",
                "peer_key": {"key_id": "mallory.1", "public_key": public},
                "rate": {"num": 1, "den": 1},
                "credit_limit": 10,
                "balance_max": 10,
            },
        )
        assert r.status_code == 201, r.text
        yield World(
            bank=bank,
            origin=origin,
            mallory=crypto.Signer("mallory", "mallory.1", key),
            stranger=crypto.Signer("mallory", "mallory.2", Ed25519PrivateKey.generate()),
            origin_transfer=str(transfer_id),
        )
    finally:
        c.close()


def _transfer(transfer_id: str | None = None) -> bytes:
    return crypto.canonical(
        {
            "transfer_id": transfer_id or str(uuid.uuid4()),
            "kind": "federation",
            "payer": "mallory/eve",
            "payee": "bank/bob",
            "amount_sent": 1,
            "amount_received": 1,
            "rate": {"num": 1, "den": 1, "version": 1},
            "expires_at": "2099-01-01T00:00:00Z",
            "description": "",
            "reference": None,
        }
    )


def _code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["code"]


def test_unsigned_requests_are_refused(world: World) -> None:
    r = httpx.post(
        f"{world.bank.url}/federation/v1/networks/bank/transfers", content=_transfer(), timeout=10
    )
    assert _code(r) == (401, "peer_signature_missing")


def test_a_wrong_signature_is_refused(world: World) -> None:
    # Answered as an unknown key is (tests/federation/test_keys.py): told apart, it would say
    # that mallory.1 is registered here.
    impostor = crypto.Signer("mallory", "mallory.1", Ed25519PrivateKey.generate())
    assert _code(signed_post(world.bank, impostor, "/transfers", _transfer())) == (
        401,
        "peer_unknown",
    )


def test_a_tampered_body_is_refused(world: World) -> None:
    path = "/federation/v1/networks/bank/transfers"
    created, nonce = str(int(time.time())), uuid.uuid4().hex
    body = _transfer()
    base = crypto.request_base("POST", path, "mallory", "bank", created, nonce, body)
    r = httpx.post(
        world.bank.url + path,
        content=body.replace(b'"amount_sent":1', b'"amount_sent":9'),
        headers={
            "MC-From": "mallory",
            "MC-To": "bank",
            "MC-Key-Id": "mallory.1",
            "MC-Created": created,
            "MC-Nonce": nonce,
            "MC-Signature": world.mallory.sign(base),
        },
        timeout=10,
    )
    assert _code(r) == (401, "peer_unknown")


def test_an_unregistered_key_or_network_is_refused(world: World) -> None:
    assert _code(signed_post(world.bank, world.stranger, "/transfers", _transfer())) == (
        401,
        "peer_unknown",
    )
    nobody = crypto.Signer("nobody", "nobody.1", Ed25519PrivateKey.generate())
    assert _code(signed_post(world.bank, nobody, "/transfers", _transfer())) == (
        401,
        "peer_unknown",
    )


def test_stale_and_future_requests_are_refused(world: World) -> None:
    for created in (int(time.time()) - 3600, int(time.time()) + 3600):
        r = signed_post(world.bank, world.mallory, "/transfers", _transfer(), created=created)
        assert _code(r) == (401, "peer_signature_stale")


def test_a_replayed_request_is_refused(world: World) -> None:
    nonce = uuid.uuid4().hex
    body = _transfer()
    first = signed_post(world.bank, world.mallory, "/transfers", body, nonce=nonce)
    assert first.status_code == 200, first.text  # refused by the ledger (no credit), signed
    assert first.json()["status"] == "refused"
    assert _code(signed_post(world.bank, world.mallory, "/transfers", body, nonce=nonce)) == (
        401,
        "peer_request_replayed",
    )


def test_a_peer_acts_only_on_its_own_link(world: World) -> None:
    # Asking about (or re-delivering) a transfer that came over another network's link.
    r = signed_post(world.bank, world.mallory, "/transfers", _transfer(world.origin_transfer))
    assert _code(r) == (403, "peer_forbidden")
    # A request addressed to another network.
    r = signed_post(world.bank, world.mallory, "/transfers", _transfer(), to="origin")
    assert _code(r) == (403, "peer_forbidden")


def test_the_answer_is_signed_by_the_receiver(world: World) -> None:
    nonce = uuid.uuid4().hex
    r = signed_post(world.bank, world.mallory, "/transfers", _transfer(), nonce=nonce)
    key = next(k for k in world.bank.descriptor()["keys"] if k["key_id"] == r.headers["MC-Key-Id"])
    assert crypto.verify(
        crypto.b64d(key["public_key"]),
        r.headers["MC-Signature"],
        crypto.response_base(nonce, r.status_code, r.content),
    )


def test_an_expiry_no_clock_can_hold_is_malformed_not_a_crash(world: World) -> None:
    # Moments at the ends of the calendar whose offset takes them past it in UTC, and a plain
    # far one for contrast: the first two are refused as malformed input, and nothing is written.
    count = "SELECT count(*) AS n FROM transfers"
    before = asyncio.run(world.bank.fetch(count))
    for expires_at in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        body = _transfer().replace(b'"2099-01-01T00:00:00Z"', f'"{expires_at}"'.encode())
        r = signed_post(world.bank, world.mallory, "/transfers", body)
        assert _code(r) == (422, "validation_error"), r.text
    assert asyncio.run(world.bank.fetch(count)) == before


def _verified(world: World, r: httpx.Response, nonce: str) -> bool:
    key = next(k for k in world.bank.descriptor()["keys"] if k["key_id"] == r.headers["MC-Key-Id"])
    return crypto.verify(
        crypto.b64d(key["public_key"]),
        r.headers["MC-Signature"],
        crypto.response_base(nonce, r.status_code, r.content),
    )


@pytest.mark.parametrize("tail", ["/transfers", "/link", "/keys", "/checkpoints"])
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"transfer_id": "a", "transfer_id": "b"}', "more than once"),
        (b'{"rate": {"num": NaN, "den": 1, "version": 1}}', "NaN is not a JSON number"),
        (b'{"amount_sent": 1e400}', "out of range"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_every_signed_body_is_read_strictly_and_its_refusal_signed(
    world: World, tail: str, body: bytes, says: str
) -> None:
    nonce = uuid.uuid4().hex
    r = signed_post(world.bank, world.mallory, tail, body, nonce=nonce)
    assert _code(r) == (422, "validation_error"), r.text
    assert says in r.json()["detail"]
    # A refusal of an authenticated call is signed too: the caller can tell it is the bank's.
    assert _verified(world, r, nonce)


@pytest.mark.parametrize(
    "rate",
    [
        {"num": "1", "den": 1, "version": 1},
        {"num": 1.0, "den": 1, "version": 1},
        {"num": 1, "den": 0, "version": 1},
        {"num": 1, "den": 1},
        {"num": True, "den": 1, "version": 1},
    ],
)
def test_a_rate_is_read_as_the_exact_integers_it_must_be(
    world: World, rate: dict[str, object]
) -> None:
    r = signed_post(world.bank, world.mallory, "/link", crypto.canonical({"rate": rate}))
    assert _code(r) == (422, "validation_error"), r.text
    assert r.json()["detail"].startswith("Not a rate: rate.")
