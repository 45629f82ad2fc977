"""Authentication before the body: no request body is read for a caller who is not known.

A request that carries a body (a Content-Length other than 0, or a Transfer-Encoding) is
authenticated on its headers alone, before anything reads the body: an API key under `/v1/`,
the signing network and its registered key under `/federation/v1/` (the signature itself
covers the body, so the route checks it once the body is read). A caller who fails is answered
as the route would answer them (401 with the same code) and the connection is closed, so
nobody without a key can make the service receive, buffer or wait for a body. What remains of
slow bodies from callers with a key is bounded by the server's deadlines (server.py).

Requests without a body pass through: the route authenticates them as before. The trade lane
(trades/lane.py), which sits outside this layer, authenticates the same way before it reads a
trade's body.
"""

import re
from collections.abc import Awaitable, Callable, Mapping

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mutualcredit.auth.dependencies import identify
from mutualcredit.errors import exception_response

_PEER = re.compile(r"/federation/v1/networks/([^/]+)/.+")

PeerCheck = Callable[[Scope, str, Mapping[str, str]], Awaitable[None]]
"""Checks a node-to-node request's headers for the network of its path (federation's, which
the ledger does not import: create_app hands it in)."""


def has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when the request says a body follows."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def refuse(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answers the exception as the application's handlers would, and closes the connection:
    the body the client meant to send is never read."""
    response = await exception_response(Request(scope), exc)
    response.headers["connection"] = "close"
    await response(scope, receive, send)


class AuthenticateBeforeBody:
    def __init__(self, app: ASGIApp, check_peer: PeerCheck) -> None:
        self.app = app
        self.check_peer = check_peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            if path.startswith("/v1/"):
                await identify(scope, Headers(scope=scope).get("authorization"))
            elif (peer := _PEER.fullmatch(path)) is not None:
                await self.check_peer(scope, peer.group(1), Headers(scope=scope))
        except Exception as exc:
            await refuse(scope, receive, send, exc)
            return
        await self.app(scope, receive, send)
