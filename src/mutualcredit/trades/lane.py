"""The trade lane: `POST /v1/networks/{network}/trades` served without the framework's layers.

Why: under load the service's ceiling is its worker's CPU, and in a py-spy profile of a worker
booking trades (bench/README.md) FastAPI's routing, dependency solving and request and response
wrappers, with the send wrappers of three middlewares, took about half of it. The ledger work
(authentication, the booking, the JSON) is the smaller part. This ASGI middleware sits outside
the others and answers a well-formed trade request for a payee in the same network itself, with
the route's own code (`trades.router.book_local`), the same authentication and rate limit, the
same error handlers (`errors.exception_response`), request id, metrics and access log.

It decides nothing a client could see differently. Any request it is not sure of goes to the
full application, with the body it has read replayed: a body or header that does not validate,
a content type other than JSON, a repeated Idempotency-Key, a body over the cap, a payee in
another network, an application mounted under a root path. So every validation error is still
built by the framework, from the route's declaration, which the OpenAPI document describes.

It authenticates the key before it reads the body, as auth.gate does for every other request
with a body: a caller without a valid key is answered 401 (the route's own refusal) and the
connection closed, with its body never read.
"""

import re
import time
from typing import ClassVar

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualcredit import jsonbody
from mutualcredit.addresses import is_remote
from mutualcredit.auth.dependencies import admit, identify
from mutualcredit.auth.gate import AuthenticateBeforeBody
from mutualcredit.errors import exception_response
from mutualcredit.middleware import BodyLimitMiddleware, RequestIdMiddleware, request_id_of
from mutualcredit.observability import ObservabilityMiddleware, record_request
from mutualcredit.observability import request_id as current_request_id
from mutualcredit.responses import IDEMPOTENCY_KEY_CHAR, IDEMPOTENCY_KEY_MAX
from mutualcredit.trades.router import book_local, router
from mutualcredit.trades.schemas import TradeCreate

TEMPLATE = router.prefix
_PATH = re.compile(r"/v1/networks/([^/]+)/trades")
# The route's own rule for the header (responses.idempotency_key).
_KEY = re.compile(f"{IDEMPOTENCY_KEY_CHAR}{{1,{IDEMPOTENCY_KEY_MAX}}}".encode())


class TradeLane:
    # The middlewares the lane does the work of, for the trades it answers itself: it hands a
    # body over the cap on (the cap answers), it authenticates before it reads the body (as the
    # gate does), and it does the request id, the metrics and the access log. It must be the
    # outermost, and the application must have no other middleware: a new one (CORS, tracing)
    # is added here with its work done by the lane, or trades would skip it. A test compares
    # this with the application's middlewares.
    STANDS_IN_FOR: ClassVar[tuple[type, ...]] = (
        AuthenticateBeforeBody,
        BodyLimitMiddleware,
        ObservabilityMiddleware,
        RequestIdMiddleware,
    )

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        authorization: bytes | None = None
        content_type: bytes | None = None
        keys: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value  # the first, as Starlette's Headers.get reads it
            elif name == b"idempotency-key":
                keys.append(value)
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                # Declared too large, or not a number: the body cap answers.
                await self.app(scope, receive, send)
                return

        request_id = request_id_of(scope)
        token = current_request_id.set(scope["state"]["request_id"])
        status = 500
        try:
            try:
                # Authenticated before the body is read (auth.gate says why); the principal
                # is kept in the request's state, so the route does not ask again if the
                # request is handed on.
                principal = await identify(
                    scope, authorization.decode("latin-1") if authorization is not None else None
                )
            except Exception as exc:
                response = await exception_response(Request(scope), exc)
                # The body is never read: close the connection rather than wait for it.
                response.headers["connection"] = "close"
            else:
                chunks: list[bytes] = []
                size = 0
                more = True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        status = 0
                        return  # the client has gone: there is nobody to answer
                    chunk = message.get("body", b"")
                    chunks.append(chunk)
                    size += len(chunk)
                    more = message.get("more_body", False)
                    if size > self.max_bytes:
                        status = 0  # the application answers, and records it
                        await self.app(scope, _replay(chunks, more, receive), send)
                        return
                trade = _well_formed(b"".join(chunks), content_type, keys)
                if trade is None:
                    status = 0
                    await self.app(scope, _replay(chunks, False, receive), send)
                    return
                try:
                    response = await book_local(
                        scope["app"].state,
                        admit(scope, principal),
                        match.group(1),
                        keys[0].decode(),
                        trade,
                    )
                except Exception as exc:
                    response = await exception_response(Request(scope), exc)
            status = response.status_code
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*response.raw_headers, (b"x-request-id", request_id)],
                }
            )
            await send({"type": "http.response.body", "body": response.body})
        finally:
            if status:  # 0: handed on, or nobody to answer
                record_request(scope, TEMPLATE, status, started)
            current_request_id.reset(token)


def _well_formed(body: bytes, content_type: bytes | None, keys: list[bytes]) -> TradeCreate | None:
    """The trade, if the request is one the lane answers itself; None to hand it on."""
    if len(keys) != 1 or _KEY.fullmatch(keys[0]) is None:
        return None
    # Only a body declared as JSON is read as JSON (FastAPI's strict content type; with no
    # content type, a body is refused or read as JSON depending on its version: it decides).
    if content_type is None or content_type.partition(b";")[0].strip().lower() != (
        b"application/json"
    ):
        return None
    try:
        # The routes' own strict parser, so that the body means the same here (orjson, say,
        # would read an integer past 64 bits as a float); what it refuses, the route answers.
        data = jsonbody.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        trade = TradeCreate.model_validate(data)
    except ValidationError:
        return None
    return None if is_remote(trade.payee) else trade


def _replay(chunks: list[bytes], more: bool, receive: Receive) -> Receive:
    """A receive that gives the body read so far, then reads on from the client."""
    first: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": more}]

    async def replayed() -> Message:
        return first.pop() if first else await receive()

    return replayed
