"""FastAPI dependencies: who is calling, and the checks every router uses."""

from typing import Annotated

from fastapi import Depends, Request

from mutualcredit.auth.service import Principal, authenticate
from mutualcredit.db import Session
from mutualcredit.errors import Unauthorized


async def current_principal(request: Request, session: Session) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'")
    principal = await authenticate(session, token.strip())
    # Logged and traced by key id only; the secret never leaves this function.
    request.state.key_id = principal.key_id
    request.app.state.rate_limiter.check(principal.key_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
