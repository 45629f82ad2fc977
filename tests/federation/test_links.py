"""A link's peer URL is an operator's word, and operators are tenants: the service calls only
addresses the egress policy allows, and what it says about a failed call tells nothing about
what is listening there. Also: a peer's keys, as an operator registers and revokes them.
"""

import asyncio
import base64
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mutualcredit.app import create_app
from mutualcredit.config import Settings
from mutualcredit.federation import crypto
from tests.helpers import Api, Net, assert_problem, auth

# Every call that reaches out to a link's peer, as an operator makes it.
PEER_CALLS = [("POST", "agree"), ("GET", "reconcile"), ("POST", "checkpoints")]


def _key() -> dict[str, str]:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return {"key_id": f"k-{uuid.uuid4().hex[:6]}", "public_key": crypto.b64e(raw)}


def _link(peer: str, url: str) -> dict[str, Any]:
    return {
        "peer": peer,
        "peer_url": url,
        "peer_key": _key(),
        "rate": {"num": 1, "den": 1},
        "credit_limit": 100,
        "balance_max": 100,
    }


class Listener:
    """A TCP server on loopback that answers as `reply` says, and counts its connections."""

    def __init__(
        self, reply: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ):
        self.reply = reply
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.reply(reader, writer)
        finally:
            writer.close()

    async def __aenter__(self) -> "Listener":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def _http_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A web server of the host's network: a page with its own words in it."""
    await reader.readuntil(b"\r\n\r\n")
    body = b'{"code": "internal-admin", "detail": "Grafana v9 on db-7.internal"}'
    writer.write(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip
    await writer.drain()


async def _signed_looking(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 200 with a JSON body and a made-up signature."""
    await reader.readuntil(b"\r\n\r\n")
    body = b'{"rate": {"version": 1}}'
    writer.write(
        b"HTTP/1.1 200 OK\r\nMC-Key-Id: k1\r\nMC-Signature: AAAA\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip
    await writer.drain()


async def _other_protocol(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Not HTTP at all: a banner, as an SSH or mail server sends."""
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts, reads, and never answers (a database waiting for its own handshake)."""
    await asyncio.sleep(30)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.fixture
async def net(api: Api) -> Net:
    return await api.network()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000", "http://127.1.2.3", "http://[::1]:8000", "http://10.0.0.5",
        "http://192.168.1.1", "http://169.254.169.254/latest", "http://[fe80::1]",
        "http://0.0.0.0:5432", "http://localhost:5432", "http://api.localhost", "http://[::]",
        "http://224.0.0.1", "http://[::ffff:127.0.0.1]",
    ],
)  # fmt: skip
async def test_a_peer_url_at_a_refused_address_is_refused_when_saved(
    api: Api, net: Net, url: str
) -> None:
    r = await api.client.post(
        f"{net.base}/federation/links", json=_link("riverside", url), headers=auth(net.operator)
    )
    problem = assert_problem(r, 422, "validation_error")
    assert problem["detail"].startswith("peer_url: not an address this service may call")
    # A link saved with a good URL cannot be moved to such an address either.
    r = await api.client.post(
        f"{net.base}/federation/links",
        json=_link("riverside", "https://riverside.example"),
        headers=auth(net.operator),
    )
    assert r.status_code == 201, r.text
    r = await api.client.patch(
        f"{net.base}/federation/links/riverside",
        json={"peer_url": url, "reason": "moved"},
        headers=auth(net.operator),
    )
    assert_problem(r, 422, "validation_error")


async def test_an_address_is_checked_again_when_connecting(
    api: Api, net: Net, db: asyncpg.Connection
) -> None:
    """A host name that resolves to loopback (this machine's own name), and a URL changed in the
    database behind the service's back: the check that counts is the one made when connecting,
    and the service does not even open a connection."""
    async with Listener(_http_banner) as listener:
        own_name = socket.gethostname()
        resolved = {str(info[4][0]) for info in socket.getaddrinfo(own_name, listener.port)}
        assert resolved, own_name
        assert all(a.startswith(("127.", "::1")) for a in resolved), resolved
        for peer, url in (
            ("by-name", f"http://{own_name}:{listener.port}"),
            ("by-hand", "https://by-hand.example"),
        ):
            r = await api.client.post(
                f"{net.base}/federation/links", json=_link(peer, url), headers=auth(net.operator)
            )
            assert r.status_code == 201, r.text
        await db.execute(
            "UPDATE links SET peer_url = $1 WHERE peer_code = 'by-hand'"
            " AND network_id = (SELECT id FROM networks WHERE code = $2)",
            f"http://127.0.0.1:{listener.port}",
            net.code,
        )
        for peer in ("by-name", "by-hand"):
            for method, action in PEER_CALLS:
                r = await api.client.request(
                    method,
                    f"{net.base}/federation/links/{peer}/{action}",
                    headers=auth(net.operator),
                )
                problem = assert_problem(r, 502, "peer_unreachable")
                assert problem["detail"] == f"{peer} gave no answer signed by its key"
        assert listener.connections == 0


@pytest.fixture
async def open_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service as a single-host federation runs it: private addresses allowed."""
    settings = Settings(
        database_url=database_url,
        outbound_allow_private=True,
        federation_timeout_seconds=1,
        secret_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_a_failed_call_says_the_same_whatever_answered(
    api: Api, net: Net, open_client: httpx.AsyncClient
) -> None:
    """Where private addresses are allowed, a link may point anywhere on the host's network: a
    closed port, a web server, another protocol, a server that never answers, a fake signature
    are all reported with the same words, and none of theirs."""
    answers: dict[str, list[dict[str, Any]]] = {}
    async with (
        Listener(_http_banner) as web,
        Listener(_other_protocol) as other,
        Listener(_silent) as silent,
        Listener(_signed_looking) as fake,
    ):
        targets = {
            "closed": _closed_port(),
            "web": web.port,
            "other": other.port,
            "silent": silent.port,
            "fake": fake.port,
        }
        for name, port in targets.items():
            peer = f"peer-{name}"
            r = await open_client.post(
                f"{net.base}/federation/links",
                json=_link(peer, f"http://127.0.0.1:{port}"),
                headers=auth(net.operator),
            )
            assert r.status_code == 201, r.text
            answers[name] = []
            for method, action in PEER_CALLS:
                r = await open_client.request(
                    method,
                    f"{net.base}/federation/links/{peer}/{action}",
                    headers=auth(net.operator),
                )
                problem = assert_problem(r, 502, "peer_unreachable")
                assert "Grafana" not in r.text
                assert "SSH" not in r.text
                del problem["instance"]
                problem["detail"] = problem["detail"].replace(peer, "PEER")
                answers[name].append(problem)
        assert web.connections > 0
        assert other.connections > 0
        assert fake.connections > 0
    first = answers["closed"]
    assert all(answer == first for answer in answers.values()), answers
    assert set(first[0]) == {"type", "title", "status", "code", "detail"}


async def test_an_operator_registers_and_revokes_a_peers_keys(api: Api, net: Net) -> None:
    link = _link("riverside", "https://riverside.example")
    r = await api.client.post(f"{net.base}/federation/links", json=link, headers=auth(net.operator))
    assert r.status_code == 201, r.text
    keys = f"{net.base}/federation/links/riverside/peer-keys"
    original = link["peer_key"]["key_id"]

    r = await api.client.post(f"{keys}/{original}/revoke", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    # Again: still revoked, still 200.
    r = await api.client.post(f"{keys}/{original}/revoke", headers=auth(net.operator))
    assert r.status_code == 200, r.text
    # A key the link never had is not found, and not silently "revoked".
    r = await api.client.post(f"{keys}/no-such-key/revoke", headers=auth(net.operator))
    problem = assert_problem(r, 404, "peer_key_not_found")
    assert problem["key_id"] == "no-such-key"
    # A key of another link is not this link's.
    other = _link("hillside", "https://hillside.example")
    r = await api.client.post(
        f"{net.base}/federation/links", json=other, headers=auth(net.operator)
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"{keys}/{other['peer_key']['key_id']}/revoke", headers=auth(net.operator)
    )
    assert_problem(r, 404, "peer_key_not_found")

    # Registered again with its own public key: trusted again. With another one: refused, and
    # the key keeps the public key it had.
    r = await api.client.post(keys, json=link["peer_key"], headers=auth(net.operator))
    assert r.status_code == 200, r.text
    r = await api.client.post(
        keys,
        json={"key_id": original, "public_key": _key()["public_key"]},
        headers=auth(net.operator),
    )
    problem = assert_problem(r, 409, "peer_key_conflict")
    assert problem["key_id"] == original
