"""Logs and metrics.

Logs: one JSON object per line, each with the request id of the request it belongs to (a
context variable set by RequestIdMiddleware). Nothing secret is ever logged: keys appear by
their public key id only, and bodies are never logged.

Metrics: Prometheus, at /metrics. With several uvicorn workers, `serve` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before they start, and /metrics aggregates all of
them. Labels carry route templates, never raw paths or tenant names, so cardinality stays small.
"""

import contextvars
import json
import logging
import os
import re
import sys
import time
from typing import Any, TextIO

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REQUESTS = Counter(
    "mutualcredit_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "mutualcredit_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRADES = Counter(
    "mutualcredit_trades_total",
    "Trade requests by outcome (created, replayed, rejected, conflict) and problem code",
    ["outcome", "code"],
)
PENDING = Gauge(
    "mutualcredit_pending_trades",
    "Holds not yet posted, voided or expired",
    multiprocess_mode="max",
)
UNSEALED = Gauge(
    "mutualcredit_audit_unsealed_records",
    "Audit records not yet chained",
    multiprocess_mode="max",
)
POOL = Gauge(
    "mutualcredit_db_pool_checked_out",
    "Database connections in use",
    multiprocess_mode="livesum",
)
BATCH_SIZE = Histogram(
    "mutualcredit_trade_batch_size",
    "Trades booked per statement by the batched write path",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
# Federation's link health, one series per link: labelled by network and peer code, the one
# exception to "no tenant names in labels", since alerting on a link needs to name it (a
# deployment has as many series as links, which operators create one by one).
_LINK = ["network", "peer"]
LINK_LAST_CONTACT = Gauge(
    "mutualcredit_federation_link_last_contact_timestamp_seconds",
    "When the link's peer last gave a signed answer (unix seconds; 0: never)",
    _LINK,
    multiprocess_mode="max",
)
LINK_FAILURES = Gauge(
    "mutualcredit_federation_link_consecutive_failures",
    "Calls to the link's peer in a row that got no signed answer",
    _LINK,
    multiprocess_mode="max",
)
LINK_WAITING = Gauge(
    "mutualcredit_federation_link_transfers_waiting",
    "Transfers sent over the link whose outcome is not known yet",
    _LINK,
    multiprocess_mode="max",
)
LINK_OLDEST_WAITING = Gauge(
    "mutualcredit_federation_link_oldest_waiting_seconds",
    "Age of the oldest transfer waiting on the link (0: none)",
    _LINK,
    multiprocess_mode="max",
)
LINK_DISPUTED = Gauge(
    "mutualcredit_federation_link_transfers_disputed",
    "Transfers an operator resolved that the peer later decided otherwise",
    _LINK,
    multiprocess_mode="max",
)
JOB_ITEMS = Counter(
    "mutualcredit_background_items_total", "Items handled by the background jobs", ["job"]
)


def metrics_response(_: Request) -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# Terminal control sequences (CSI, such as colours, and OSC): uvicorn colours some of its
# messages, and a message may quote text a client sent. They are stripped from every field so
# that a log line shows in a terminal as written and parses as plain JSON text.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, links
    r"|\x1b[@-_]?"  # any other escape, and a lone ESC
)

# Extra fields of a record that repeat its message in another form: uvicorn passes its message
# again with colour codes as `color_message`, for its own formatter.
_DUPLICATES = frozenset({"color_message"})


def _plain(value: Any) -> Any:
    return _ANSI.sub("", value) if isinstance(value, str) else value


class _Fields:
    """What a log line carries besides its message: the request id and the record's extras."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"} | _DUPLICATES

    @classmethod
    def extras(cls, record: logging.LogRecord) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        rid = request_id.get()
        if rid:
            fields["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in cls._STANDARD and not key.startswith("_"):
                fields[key] = _plain(value)
        return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for a log collector."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _plain(record.getMessage()),
        }
        line.update(_Fields.extras(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """One line for a person at a terminal: time, level, logger, message, then the extras
    (request id, status, duration, key id) as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        plain = logging.makeLogRecord(record.__dict__)
        plain.message = _plain(record.message)
        line = super().formatMessage(plain)
        extras = " ".join(f"{k}={v}" for k, v in _Fields.extras(record).items())
        return f"{line} {extras}" if extras else line


def resolve_log_format(fmt: str | None, stream: TextIO | None = None) -> str:
    """`json` or `text` as configured; unset (or `auto`): text when the stream (stderr) is a
    terminal, where a person reads it, and JSON otherwise, where a collector does."""
    if fmt in ("json", "text"):
        return fmt
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(level: str, fmt: str | None) -> None:
    handler = logging.StreamHandler()
    formatter: logging.Formatter
    if resolve_log_format(fmt, handler.stream) == "json":
        formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Their INFO lines (initdb output, plugin set-up, uvicorn's own access log) are noise here:
    # the access log below has what they would say, in the same format as everything else.
    for noisy in ("pgserver", "alembic.runtime.plugins", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


access_log = logging.getLogger("mutualcredit.access")


class ObservabilityMiddleware:
    """Times every request, counts it by route template, and writes one access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            record_request(scope, getattr(route, "path", None) or "unmatched", status, started)


def record_request(scope: Scope, template: str, status: int, started: float) -> None:
    """Counts and times one answered request, and writes its access-log line."""
    elapsed = time.perf_counter() - started
    method = scope["method"]
    REQUESTS.labels(method, template, str(status)).inc()
    LATENCY.labels(method, template).observe(elapsed)
    app = scope.get("app")
    engine = getattr(getattr(app, "state", None), "engine", None)
    if engine is not None:
        POOL.set(engine.pool.checkedout())
    access_log.info(
        "%s %s %s",
        method,
        scope["path"],
        status,
        extra={
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "key_id": scope.get("state", {}).get("key_id"),
        },
    )
