"""The HTTP/1.1 client of webhook deliveries: one POST at a time per connection, connections
kept alive per origin, on asyncio streams.

Why not the service's httpx client (egress.client): delivery sends every event of a busy
network, one after another per endpoint, and httpx spends 2 to 3 ms of CPU on each POST on the
benchmark's machine where the same request over asyncio streams costs 0.1 ms (bench/README.md).
At hundreds of events a second that decides whether delivery keeps up with the ledger.

It keeps the egress rules: the host is resolved and every address it resolves to is checked by
the same policy (egress.addresses) before connecting to a checked address, never to the name
again; TLS verifies the URL's host name with httpx's trust store; a redirect is an answer like
any other and is never followed; no proxy. An answer is read to at most `max_body` bytes (the
connection is then closed rather than drained), and the caller bounds the whole call in time.
A connection is reused only after an answer read to its end, and not after `keepalive` seconds
idle (a receiver closes idle connections on its own schedule); a POST that fails on a reused
connection before any answer (the receiver had closed it) is sent once more on a new one: the
event goes at least once, with the same webhook-id, as always.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass, field

import httpx

from mutualcredit import egress

# Longest head (status line and headers) read from a receiver.
MAX_HEAD = 16 * 1024


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.1 this client reads."""


class _Closed(Exception):
    """A kept-alive connection turned out closed before any answer: try a new one."""


class ConnectFailed(Exception):
    """No connection could be made (refused, unreachable, DNS); `refused` when the address
    policy refused it."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Target:
    """A URL, parsed once for all the POSTs of a batch."""

    origin: tuple[str, str, int]
    host_header: str
    path: str

    @classmethod
    def of(cls, url: str) -> "Target":
        parsed = httpx.URL(url)
        scheme = parsed.scheme
        if scheme not in ("http", "https"):
            raise ProtocolError(f"unsupported scheme {scheme!r}")
        host = parsed.raw_host.decode("ascii")
        default = 443 if scheme == "https" else 80
        port = parsed.port or default
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default else f"{shown}:{port}"
        return cls(
            origin=(scheme, host, port),
            host_header=host_header,
            path=parsed.raw_path.decode("ascii") or "/",
        )


class Sender:
    """Kept-alive connections by origin, shared by the delivery loops of a process (each loop
    takes a connection for one POST and gives it back)."""

    def __init__(self, *, allow_private: bool, max_body: int, keepalive: float = 4.0) -> None:
        # 4 s: under the 5 s after which common servers (uvicorn's default) close an idle
        # connection, so that a reused one is rarely found closed (when it is, the POST goes
        # once more on a new one).
        self.allow_private = allow_private
        self.max_body = max_body
        self.keepalive = keepalive
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._pruned = time.monotonic()

    async def post(self, target: Target, headers: dict[str, str], body: bytes) -> int:
        """POSTs `body` and returns the answer's status code, having read at most `max_body`
        bytes of its body. Raises ConnectFailed, ProtocolError or OSError."""
        request = _request(target, headers, body)
        self._prune()
        reused = self._take(target.origin)
        if reused is not None:
            try:
                return await self._exchange(target, reused, request, reused=True)
            except _Closed:
                pass  # closed by the receiver while idle: once more, on a new connection
        return await self._exchange(target, await self._connect(target), request, reused=False)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _prune(self) -> None:
        """Closes the connections idle too long, whatever their origin (an endpoint removed
        or moved is not called again), at most once per `keepalive`."""
        now = time.monotonic()
        if now - self._pruned < self.keepalive:
            return
        self._pruned = now
        for origin, idle in list(self._idle.items()):
            kept = [c for c in idle if now - c.idle_since <= self.keepalive]
            for connection in idle:
                if connection not in kept:
                    connection.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]

    def _take(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            stale = time.monotonic() - connection.idle_since > self.keepalive
            if stale or connection.reader.at_eof() or connection.writer.is_closing():
                connection.close()
                continue
            return connection
        return None

    async def _connect(self, target: Target) -> _Connection:
        scheme, host, port = target.origin
        try:
            found = await egress.addresses(
                host, port, allow_private=self.allow_private, seconds=None
            )
        except egress.AddressNotAllowed as exc:
            raise ConnectFailed(str(exc), refused=True) from exc
        except Exception as exc:  # httpcore.ConnectError: the name does not resolve
            raise ConnectFailed(str(exc), refused=False) from exc
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            tls = self._tls
        last: Exception | None = None
        for address in found:
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                    limit=MAX_HEAD,
                )
                return _Connection(reader, writer)
            except (OSError, ssl.SSLError) as exc:
                last = exc
        raise ConnectFailed(str(last or f"no address for {host}"), refused=False)

    async def _exchange(
        self, target: Target, connection: _Connection, request: bytes, *, reused: bool
    ) -> int:
        """One request and its answer on `connection`; given back to the idle ones only when
        the answer was read to its end and may be followed by another."""
        reusable = False
        try:
            try:
                connection.writer.write(request)
                await connection.writer.drain()
                head = await connection.reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise ProtocolError("the answer's head is too long") from exc
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                nothing = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if reused and nothing:
                    raise _Closed from exc
                raise
            status, length, chunked, keep = _head(head)
            if status < 200:
                raise ProtocolError("an informational answer was not asked for")
            if status in (204, 304):
                reusable = keep
            elif chunked:
                reusable = await self._read_chunked(connection.reader) and keep
            elif length is not None:
                # A longer answer is not read at all: closing the connection drops it.
                if length <= self.max_body:
                    await connection.reader.readexactly(length)
                    reusable = keep
            else:
                await self._read_to_end(connection.reader)  # its end closes the connection
            return status
        finally:
            if reusable:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(target.origin, []).append(connection)
            else:
                connection.close()

    async def _read_to_end(self, reader: asyncio.StreamReader) -> None:
        read = 0
        while read < self.max_body:
            chunk = await reader.read(self.max_body - read)
            if not chunk:
                return
            read += len(chunk)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bool:
        """Reads a chunked body; False when it is longer than `max_body` (left unread)."""
        read = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise ProtocolError("a chunk size is not a number") from exc
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return True
            read += size
            if read > self.max_body:
                return False
            await reader.readexactly(size + 2)


def _request(target: Target, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"host: {target.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """The status, content-length, whether chunked, and whether the connection stays open."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError("not an HTTP/1.x status line")
    status = int(parts[1])
    keep = parts[0] == "HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            if not value.isdigit():
                raise ProtocolError("a content-length is not a number")
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value.endswith("chunked")
        elif name == "connection":
            keep = "close" not in value if keep else "keep-alive" in value
    return status, length, chunked, keep
