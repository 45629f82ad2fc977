"""The HTTP server: uvicorn, with the limits a server that faces the internet needs.

The service is exposed directly (the Dockerfile runs it with no proxy in front), so it must
defend itself against clients that are slow or stall on purpose. uvicorn's own HTTP protocol
does not: its keep-alive timeout runs only between two requests, so a connection that sends
half a request line, half its headers or half its body (or a chunked body that never ends) is
held for as long as the client likes, with whatever it has buffered; it caps neither the
connections it holds nor the bytes of request bodies in memory; and `limit_concurrency` only
answers 503 to requests that have sent their headers. (bench/README.md has what each server we
compared does, measured with bench/slow_clients.py.)

`GuardedHttpToolsProtocol` is uvicorn's httptools protocol with those limits, passed to uvicorn
as its `http` class; everything else is uvicorn's own. Each request has deadlines:

    connection opened, or the request's first byte on a kept-alive connection
        │  header_timeout: the request line and headers, at most max_header_bytes
        ▼
    headers complete ── the application starts (it authenticates before reading a body)
        │  body_timeout: the whole body
        ▼
    body complete ── the application answers (the database's own timeouts bound it: db.py)
        │  send_timeout: while the client reads too slowly for the response to be written
        ▼
    response sent ── keep-alive: uvicorn closes the connection if nothing comes within
                     timeout_keep_alive; the next request's first byte starts header_timeout

A request that misses a deadline is answered 408 (if no answer has started) and its
connection closed. Each worker also bounds what it holds: `max_connections` open connections
(one more is answered 503 and closed) and `max_buffered_bytes` of request bodies received for
requests in progress (a body that would go past it is answered 503 and its connection closed).
"""

import asyncio
import logging
import resource
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, cast

import orjson
import uvicorn
from prometheus_client import Counter
from uvicorn._types import ASGI3Application
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from mutualcredit.config import Settings
from mutualcredit.errors import HeadersTooLarge, ProblemError, RequestTimeout, ServerBusy

log = logging.getLogger("mutualcredit.server")

CUT = Counter(
    "mutualcredit_http_connections_cut_total",
    "Connections the server closed to protect itself, by reason",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What one client may take of a worker (the settings of the same names)."""

    header_timeout: float
    body_timeout: float
    send_timeout: float
    max_connections: int
    max_header_bytes: int
    max_buffered_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "ClientLimits":
        return cls(
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            send_timeout=settings.send_timeout_seconds,
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            max_buffered_bytes=settings.max_buffered_bytes,
        )


class Worker:
    """What the connections of one worker process share.

    `run` sets the limits in its own process; a worker process that uvicorn spawns reads them
    from the environment, as its application does (app.app_from_env)."""

    _limits: ClassVar[ClientLimits | None] = None
    buffered: ClassVar[int] = 0  # bytes of request bodies held for requests in progress

    @classmethod
    def limits(cls) -> ClientLimits:
        if cls._limits is None:
            cls._limits = ClientLimits.from_settings(Settings())
        return cls._limits

    @classmethod
    def configure(cls, limits: ClientLimits) -> None:
        cls._limits = limits


def render(problem: ProblemError) -> bytes:
    """A complete HTTP/1.1 response for a problem, after which the connection closes."""
    body = orjson.dumps(problem.to_problem())
    lines = [
        f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}",
        "content-type: application/problem+json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name.lower()}: {value}" for name, value in problem.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with deadlines for each phase of a request and bounds on
    the connections and body bytes of its worker (the module's docstring has the picture)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = Worker.limits()
        # One deadline at a time: the head's or the body's. Writing has its own.
        self._deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._head_bytes = 0
        self._held = 0  # this connection's share of Worker.buffered
        self._refused = False
        # The request the application is answering (uvicorn keeps only the newest one, which
        # differs when requests are pipelined).
        self._running: RequestResponseCycle | None = None

    # Connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.connections) >= self.limits.max_connections:
            # Answered before reading anything: the one thing a full worker can still afford.
            self._refused = True
            CUT.labels("too_many_connections").inc()
            writer = cast(asyncio.Transport, transport)
            writer.write(render(ServerBusy("This worker holds as many connections as it may")))
            writer.close()
            return
        super().connection_made(transport)  # type: ignore[arg-type]
        # A new connection owes a request's head, even before its first byte.
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear_deadline()
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None
        self._release()
        if not self._refused:
            self._disconnect()
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        # A deadline starts only for a phase that this read left unfinished: a request that
        # arrives whole in one read, as most do, costs no timer.
        if self._reading_head:
            if self._head_bytes > self.limits.max_header_bytes:
                CUT.labels("headers_too_large").inc()
                limit = self.limits.max_header_bytes
                self._cut(
                    HeadersTooLarge(f"The request line and headers are limited to {limit} bytes")
                )
            elif self._head_bytes and self._deadline is None:
                # Part of a head, the rest still to come. (A kept-alive connection that sends
                # nothing is closed by uvicorn's keep-alive timeout.)
                self._deadline = self.loop.call_later(
                    self.limits.header_timeout, self._head_timed_out
                )
        elif self._deadline is None:
            # A body still to come.
            self._deadline = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    # Parser callbacks: a request's head, then its body

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._clear_deadline()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.cycle.response_complete:
            # Bytes the request keeps until it is answered (uvicorn drops a body that arrives
            # after its answer).
            if Worker.buffered + len(body) > self.limits.max_buffered_bytes:
                CUT.labels("buffered_bytes").inc()
                self._cut(ServerBusy("This worker holds as many bytes of request bodies as it may"))
                return
            Worker.buffered += len(body)
            self._held += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._clear_deadline()
        # Whatever arrives from now on is the next request's head.
        self._reading_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._release()
        super().on_response_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    # Writing

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None:
            self._send_deadline = self.loop.call_later(
                self.limits.send_timeout, self._send_timed_out
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    # Deadlines

    def _clear_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        CUT.labels("header_timeout").inc()
        # An idle connection is simply closed; a half-sent request is told why.
        late = RequestTimeout("The request's headers did not arrive in time")
        self._cut(late if self._head_bytes > 0 else None)

    def _body_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        CUT.labels("body_timeout").inc()
        self._cut(RequestTimeout("The request's body did not arrive in time"))

    def _send_timed_out(self) -> None:
        self._send_deadline = None
        if self.transport.is_closing():
            return
        CUT.labels("send_timeout").inc()
        # The client does not read: drop what is still to be written rather than wait to flush.
        self._disconnect()
        self.transport.abort()

    def _cut(self, problem: ProblemError | None) -> None:
        """Closes the connection, answering `problem` first unless an answer has started; a
        request in progress learns that its client has gone (its receive says so and what it
        sends is dropped)."""
        running = self._running
        if running is not None and running.response_started and not running.response_complete:
            problem = None
        self._disconnect()
        if problem is not None:
            self.transport.write(render(problem))
        self.transport.close()

    def _disconnect(self) -> None:
        """Tells every request of the connection that is not answered yet that its client has
        gone: its receive says so, and what it sends is dropped. (uvicorn itself tells only the
        newest, which is not the one being answered when requests are pipelined.)"""
        cycles = [self._running, self.cycle, *(cycle for cycle, _ in self.pipeline)]
        for cycle in cycles:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()

    def _release(self) -> None:
        Worker.buffered -= self._held
        self._held = 0


def _raise_open_files(needed: int) -> None:
    """Lets the process open as many files as its connections need, within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            log.warning(
                "open files are limited to %d, fewer than MUTUALCREDIT_MAX_CONNECTIONS needs (%d)",
                target,
                needed,
            )


def run(settings: Settings) -> None:
    """Serves the application (`app.app_from_env` in each worker) until SIGTERM, then drains
    the requests in flight for up to 30 s."""
    Worker.configure(ClientLimits.from_settings(settings))
    # Each connection is a file, and so is each database connection of the two pools.
    _raise_open_files(settings.max_connections + 2 * settings.pool_size + 64)
    uvicorn.run(
        "mutualcredit.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        http=GuardedHttpToolsProtocol,
        # The service has no WebSocket endpoint: an upgrade request is an ordinary request.
        ws="none",
        # Our own JSON access log (observability.py) replaces uvicorn's.
        access_log=False,
        log_config=None,
    )
