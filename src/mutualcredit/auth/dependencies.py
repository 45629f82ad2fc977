"""FastAPI dependencies: who is calling, and the checks every router uses."""

from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from mutualcredit.auth.service import Principal, authenticate, authenticate_raw
from mutualcredit.db import Session, write_connection
from mutualcredit.errors import Unauthorized


def bearer_token(header: str | None) -> str:
    """The key from an `Authorization: Bearer <key>` header."""
    if not header:
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'")
    return token.strip()


def admit(scope: Scope, principal: Principal) -> Principal:
    """Lets an authenticated key in, or refuses it for its rate."""
    # Logged and traced by key id only; the secret never leaves authentication.
    scope.setdefault("state", {})["key_id"] = principal.key_id
    scope["app"].state.rate_limiter.check(principal.key_id)
    return principal


async def current_principal(request: Request, session: Session) -> Principal:
    """Authenticates in the request's transaction, and names the actor for its triggers."""
    token = bearer_token(request.headers.get("authorization"))
    return admit(request.scope, await authenticate(session, token))


async def identify(scope: Scope, authorization: str | None) -> Principal:
    """Authenticates the key in one autocommit round trip on the write path's pool, once per
    request: the principal is kept in the request's state, where the layers after the first
    one to ask find it (auth.gate authenticates before a body is read, the trade lane and the
    booking route use the same answer)."""
    state = scope.setdefault("state", {})
    principal: Principal | None = state.get("principal")
    if principal is None:
        token = bearer_token(authorization)
        app_state = scope["app"].state
        async with write_connection(app_state.fast_pool, app_state.pool_timeout) as conn:
            principal = await authenticate_raw(conn, token)
        state["principal"] = principal
    return principal


async def authenticate_booking(scope: Scope, authorization: str | None) -> Principal:
    """Authenticates for the trade write path, which books in statements of its own and so
    needs no request transaction (nor holds a connection)."""
    return admit(scope, await identify(scope, authorization))


async def booking_principal(request: Request) -> Principal:
    return await authenticate_booking(request.scope, request.headers.get("authorization"))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
BookingPrincipal = Annotated[Principal, Depends(booking_principal)]
