"""ASGI middleware: a hard cap on request bodies, and a request id on every response."""

import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualcredit.errors import PayloadTooLarge, ValidationProblem
from mutualcredit.observability import request_id as current_request_id


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, whether or not Content-Length is declared.

    Checked before the endpoint parses anything, so an oversized body writes nothing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(send, ValidationProblem("Content-Length is not a number"))
                    return
                if declared > self.max_bytes:
                    await _send_problem(send, self._problem())
                    return

        received = 0
        response_started = False
        refused = False

        async def limited_receive() -> Message:
            # Raising here would be swallowed by the framework's body parser (as a generic 400),
            # so answer 413 now and tell the application that the client has gone.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not response_started:
                        await _send_problem(send, self._problem())
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 is the answer; whatever the application says is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    def _problem(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request bodies are limited to {self.max_bytes} bytes")


async def _send_problem(send: Send, problem: ValidationProblem | PayloadTooLarge) -> None:
    body = orjson.dumps(problem.to_problem())
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def request_id_of(scope: Scope) -> bytes:
    """The client's X-Request-Id if it is sane (ASCII, 1-100 bytes), else a new one; also
    stored in the scope's state, where the access log and the handlers find it."""
    request_id = None
    for name, value in scope["headers"]:
        if name == b"x-request-id" and 0 < len(value) <= 100 and value.isascii():
            request_id = value
    if request_id is None:
        request_id = uuid.uuid4().hex.encode()
    scope.setdefault("state", {})["request_id"] = request_id.decode("ascii", "replace")
    return request_id


class RequestIdMiddleware:
    """Echoes a sane X-Request-Id, or makes one, so a client and the logs can name a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = current_request_id.set(scope["state"]["request_id"])

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            current_request_id.reset(token)
