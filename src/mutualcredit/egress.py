"""Egress: where the service may connect (outbound HTTP), checked when it connects.

An operator sets a link's `peer_url`; the service then calls it (agree, reconcile, checkpoints,
deliveries). On a deployment that hosts many networks every operator is a tenant, and a URL
that points inside the host's own network (loopback, a private range, a cloud's metadata
address) would make the service a port scanner for them. So every outbound connection goes
through `OutboundPolicy`: the host name is resolved, every address it resolves to is checked,
and the connection is made to an address that was checked (not to the name again, which a
hostile DNS server could answer differently the second time). TLS still verifies the name
(httpcore passes the URL's host as the server name, whatever address it connected to).

Refused by default: loopback, private (RFC 1918, unique local), link-local, shared (CGNAT),
reserved and documentation ranges, that is every address `ipaddress` does not call global; and
always multicast and unspecified addresses. `MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE=true` allows
the non-global unicast ranges, for tests and for federations on one host or one private network.
Redirects are never followed (the client is built with `follow_redirects=False`).
"""

import asyncio
import contextlib
import ipaddress
import socket
import typing

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressNotAllowed(httpcore.ConnectError):
    """The peer's address is one the policy refuses (a ConnectError, as any unreachable peer:
    callers answer both alike, so a refusal tells nothing about what is behind the address)."""


def allowed(address: IPAddress, *, allow_private: bool) -> bool:
    if address.is_multicast or address.is_unspecified:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return allowed(address.ipv4_mapped, allow_private=allow_private)
    return allow_private or address.is_global


def refused_at_sight(url: str, *, allow_private: bool) -> bool:
    """True when a URL's host is an address (or `localhost`) the policy refuses: caught when an
    operator saves it, before any call. A host name is checked when it is connected to, after
    DNS, since what it resolves to can change."""
    host = (httpx.URL(url).host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return not allow_private
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not allowed(address, allow_private=allow_private)


async def addresses(
    host: str, port: int, *, allow_private: bool, seconds: float | None
) -> list[str]:
    """The addresses `host` resolves to, every one checked: connect to these, never to the
    name again. Raises AddressNotAllowed (or httpcore.ConnectError when it does not
    resolve)."""
    try:
        async with asyncio.timeout(seconds):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (socket.gaierror, TimeoutError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}") from exc
    # Every address must pass: a name that resolves to a public and a private address is
    # refused, rather than trusting which one a later lookup would give first.
    found = [str(info[4][0]) for info in infos]
    for text in found:
        address = ipaddress.ip_address(text.partition("%")[0])
        if not allowed(address, allow_private=allow_private):
            raise AddressNotAllowed("the peer's address is not one this service may call")
    return found


class OutboundPolicy(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the policy allows."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, *, allow_private: bool) -> None:
        self.inner = inner
        self.allow_private = allow_private

    async def _addresses(self, host: str, port: int, seconds: float | None) -> list[str]:
        return await addresses(host, port, allow_private=self.allow_private, seconds=seconds)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self._addresses(host, port, timeout):
            try:
                stream = await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
                continue
            try:
                # httpcore asks this first. A peer that closes the connection as it opens (a
                # node being killed) leaves anyio's stream without a socket, and the question
                # raises AttributeError: the connection failed, as any refused connect.
                stream.get_extra_info("ssl_object")
            except AttributeError as exc:
                with contextlib.suppress(Exception):
                    await stream.aclose()
                last = httpcore.ConnectError(f"{address}:{port} closed the connection at once")
                last.__cause__ = exc
                continue
            return stream
        raise last or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed("unix sockets are not outbound addresses")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PolicyTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool on the policy's network backend (httpx
    does not take a network backend as an argument; its pool is rebuilt with the same
    settings)."""

    def __init__(self, *, allow_private: bool, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        pool = self._pool
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=pool._ssl_context,
            max_connections=pool._max_connections,
            max_keepalive_connections=pool._max_keepalive_connections,
            keepalive_expiry=pool._keepalive_expiry,
            http1=pool._http1,
            http2=pool._http2,
            retries=pool._retries,
            network_backend=OutboundPolicy(pool._network_backend, allow_private=allow_private),
        )


def client(*, timeout: float, allow_private: bool) -> httpx.AsyncClient:
    """The service's one outbound HTTP client: the address policy, no redirects."""
    return httpx.AsyncClient(
        transport=PolicyTransport(allow_private=allow_private),
        timeout=timeout,
        follow_redirects=False,
        # The environment's proxies would connect on the service's behalf, past the policy.
        trust_env=False,
    )
