"""The HTTP/1.1 client of webhook deliveries: one POST at a time per connection, connections
kept alive per origin, on asyncio streams.

Why not the service's httpx client (egress.client): delivery sends every event of a busy
network, one after another per endpoint, and httpx spends 2 to 3 ms of CPU on each POST on the
benchmark's machine. The same POST framed and parsed by h11 (the HTTP/1.1 library under httpx
and uvicorn, sans I/O) on asyncio streams costs 0.3 ms, as does aiohttp's client, which would
be a second HTTP stack to depend on (bench/README.md). At hundreds of events a second that
decides whether delivery keeps up with the ledger. The parsing is h11's, not ours: framing,
chunked bodies, keep-alive and `connection: close` are what it says.

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

import h11
import httpx

from mutualcredit import egress

# Longest head (status line and headers) read from a receiver.
MAX_HEAD = 16 * 1024
# Most bytes read from the socket at once.
READ_SIZE = 64 * 1024


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
    # h11's state of the connection: what was sent, what the answer has been so far.
    http: h11.Connection = field(
        default_factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    )
    # Bytes of the current answer read so far (0: none yet, so a reused connection found
    # closed can take the POST again on a new one).
    received: int = 0

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
        self._prune()
        reused = self._take(target.origin)
        if reused is not None:
            try:
                return await self._exchange(target, reused, headers, body, reused=True)
            except _Closed:
                pass  # closed by the receiver while idle: once more, on a new connection
        connection = await self._connect(target)
        try:
            return await self._exchange(target, connection, headers, body, reused=False)
        except _Closed as exc:
            raise ProtocolError("the receiver closed the connection without an answer") from exc

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
                )
                return _Connection(reader, writer)
            except (OSError, ssl.SSLError) as exc:
                last = exc
        raise ConnectFailed(str(last or f"no address for {host}"), refused=False)

    async def _exchange(
        self,
        target: Target,
        connection: _Connection,
        headers: dict[str, str],
        body: bytes,
        *,
        reused: bool,
    ) -> int:
        """One request and its answer on `connection`, framed and parsed by h11; given back to
        the idle ones only when the answer was read to its end and h11 says another request
        may follow (HTTP/1.1, no `connection: close`)."""
        http = connection.http
        reusable = False
        try:
            fields = [("host", target.host_header), *headers.items()]
            fields.append(("content-length", str(len(body))))
            try:
                connection.writer.write(
                    http.send(h11.Request(method="POST", target=target.path, headers=fields))
                    + (http.send(h11.Data(data=body)) or b"")
                    + (http.send(h11.EndOfMessage()) or b"")
                )
                await connection.writer.drain()
                event = await self._next_event(connection)
            except (ConnectionError, _Closed) as exc:
                if reused and not connection.received:
                    raise _Closed from exc
                raise
            while isinstance(event, h11.InformationalResponse):
                event = await self._next_event(connection)
            if not isinstance(event, h11.Response):
                raise ProtocolError("the receiver closed the connection without an answer")
            status = event.status_code
            read = 0
            while True:
                event = await self._next_event(connection)
                if isinstance(event, h11.Data):
                    read += len(event.data)
                    if read > self.max_body:
                        break  # the rest is not read: closing the connection drops it
                elif isinstance(event, h11.EndOfMessage):
                    reusable = http.our_state is h11.DONE and http.their_state is h11.DONE
                    break
                else:
                    break  # closed by the receiver: the answer ended with the connection
            if reusable:
                http.start_next_cycle()
                connection.received = 0
            return status
        except h11.ProtocolError as exc:
            raise ProtocolError(f"the answer is not HTTP/1.1 this client reads: {exc}") from exc
        finally:
            if reusable:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(target.origin, []).append(connection)
            else:
                connection.close()

    async def _next_event(self, connection: _Connection) -> object:
        """h11's next event of the answer, reading from the socket as h11 needs; raises _Closed
        when the connection ends before a byte of the answer."""
        http = connection.http
        while True:
            event = http.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed) and not connection.received:
                    raise _Closed
                return event
            data = await connection.reader.read(READ_SIZE)
            connection.received += len(data)
            if not data and not connection.received:
                raise _Closed
            http.receive_data(data)  # b"": the end of the connection, which h11 judges
