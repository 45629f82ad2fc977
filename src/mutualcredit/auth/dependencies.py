"""FastAPI dependencies: who is calling, and the checks every router uses."""

from typing import Annotated

from fastapi import Depends, Request

from mutualcredit.auth.service import Principal, authenticate, authenticate_raw
from mutualcredit.db import Session
from mutualcredit.errors import Unauthorized


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'")
    return token.strip()


def _admit(request: Request, principal: Principal) -> Principal:
    # Logged and traced by key id only; the secret never leaves authentication.
    request.state.key_id = principal.key_id
    request.app.state.rate_limiter.check(principal.key_id)
    return principal


async def current_principal(request: Request, session: Session) -> Principal:
    """Authenticates in the request's transaction, and names the actor for its triggers."""
    return _admit(request, await authenticate(session, _bearer(request)))


async def booking_principal(request: Request) -> Principal:
    """Authenticates in one autocommit round trip, for the trade write path, which books in
    statements of its own and so needs no request transaction (nor holds a connection)."""
    token = _bearer(request)
    async with request.app.state.fast_pool.acquire() as conn:
        principal = await authenticate_raw(conn, token)
    return _admit(request, principal)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
BookingPrincipal = Annotated[Principal, Depends(booking_principal)]
