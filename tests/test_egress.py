"""Egress: outbound calls go only where the policy allows, checked at connection time, never
redirected.

A real HTTP server listens on loopback and counts the connections it accepts: a refused address
must not even be connected to.
"""

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from mutualcredit import egress


class Server:
    """A minimal HTTP/1.1 server: answers every request with 200, or with a redirect."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self.redirect_to: str | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if self.redirect_to:
            head = f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to}\r\n"
        else:
            head = "HTTP/1.1 200 OK\r\n"
        writer.write(f"{head}Content-Length: 2\r\nConnection: close\r\n\r\nok".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
        "169.254.169.254", "fe80::1", "fc00::1", "fd12:3456::1", "100.64.0.1", "192.0.2.1",
        "198.18.0.1", "240.0.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    ],
)  # fmt: skip
def test_addresses_that_are_not_global_are_refused_by_default(address: str) -> None:
    assert not egress.allowed(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "::ffff:224.0.0.1"])
def test_multicast_and_unspecified_are_refused_even_when_private_is_allowed(
    address: str,
) -> None:
    assert not egress.allowed(ipaddress.ip_address(address), allow_private=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1", "fd00::1", "169.254.0.9"])
def test_private_addresses_pass_when_allowed(address: str) -> None:
    assert egress.allowed(ipaddress.ip_address(address), allow_private=True)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_global_addresses_pass(address: str) -> None:
    assert egress.allowed(ipaddress.ip_address(address), allow_private=False)


async def test_a_refused_address_is_never_connected_to(server: Server) -> None:
    async with egress.client(timeout=2, allow_private=False) as client:
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            with pytest.raises(httpx.ConnectError, match="not one this service may call"):
                await client.get(f"http://{host}:{server.port}/")
    assert server.connections == 0


async def test_allowed_private_addresses_are_reached(server: Server) -> None:
    async with egress.client(timeout=2, allow_private=True) as client:
        r = await client.get(f"http://localhost:{server.port}/")
    assert r.status_code == 200
    assert r.text == "ok"
    assert server.connections == 1


async def test_redirects_are_not_followed(server: Server) -> None:
    server.redirect_to = "http://169.254.169.254/latest/meta-data/"
    async with egress.client(timeout=2, allow_private=True) as client:
        r = await client.get(f"http://127.0.0.1:{server.port}/")
    assert r.status_code == 302
    assert server.connections == 1


class _ClosedAtOnce(httpcore.AsyncNetworkStream):
    """What anyio hands back when the peer closed the connection as it opened (a node being
    killed): a stream with no socket, whose first question raises AttributeError."""

    closed = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        raise AssertionError("never read")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        raise AssertionError("never written")

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> object:
        raise AttributeError("'NoneType' object has no attribute 'getpeername'")


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.stream = _ClosedAtOnce()

    async def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.AsyncNetworkStream:
        return self.stream


async def test_a_connection_closed_as_it_opens_is_a_failed_connect() -> None:
    """Not an AttributeError out of the client (a 500 in the federation fault run once): a
    ConnectError, which every caller already reads as an unreachable peer."""
    inner = _Backend()
    policy = egress.OutboundPolicy(inner, allow_private=True)
    with pytest.raises(httpcore.ConnectError):
        await policy.connect_tcp("127.0.0.1", 9)
    assert inner.stream.closed
