"""FastAPI dependencies: who is calling, and the checks every router uses."""

from typing import Annotated

from fastapi import Depends, Request

from mutualcredit.auth.models import Role
from mutualcredit.auth.service import Principal, authenticate
from mutualcredit.db import Session
from mutualcredit.errors import Forbidden, Unauthorized


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
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_platform(principal: Principal) -> None:
    if principal.role is not Role.platform:
        raise Forbidden("Only a platform key may do this")


def require_operator(principal: Principal) -> None:
    """The caller must run the network (its access to the network is checked already)."""
    if principal.role not in (Role.platform, Role.operator):
        raise Forbidden("Only an operator of this network may do this")
