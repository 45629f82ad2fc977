"""The network a request's path names, resolved and authorised once, as a dependency."""

import uuid
from typing import Annotated

from fastapi import Depends

from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.db import Session
from mutualcredit.networks import service


async def path_network_id(network: str, session: Session, principal: CurrentPrincipal) -> uuid.UUID:
    """The id of the path's `{network}`, if the caller may reach it; 404 otherwise (the same
    answer as a network that does not exist: another tenant's networks are private)."""
    return await service.network_id(session, principal, network)


NetworkId = Annotated[uuid.UUID, Depends(path_network_id)]
