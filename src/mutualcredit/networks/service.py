"""Networks: creation, lookup within the caller's reach, and settings."""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.context import explain
from mutualcredit.auth.models import Role
from mutualcredit.auth.service import Principal
from mutualcredit.errors import ValidationProblem
from mutualcredit.networks.errors import NetworkCodeTaken, NetworkNotFound
from mutualcredit.networks.models import Network
from mutualcredit.networks.schemas import NetworkCreate, NetworkUpdate


async def create_network(session: AsyncSession, data: NetworkCreate) -> Network:
    network = Network(**data.model_dump())
    try:
        async with session.begin_nested():
            session.add(network)
            await session.flush()
    except IntegrityError as exc:
        if "networks_code_key" in str(exc.orig):
            raise NetworkCodeTaken(f"A network with code {data.code!r} exists") from exc
        raise
    await session.refresh(network)
    return network


async def get_network(session: AsyncSession, principal: Principal, code: str) -> Network:
    """The network, if the caller may see it. Other networks are 404: their existence is private."""
    if principal.role is not Role.platform and principal.network_code != code:
        raise NetworkNotFound(f"No network {code!r}")
    network = await session.scalar(select(Network).where(Network.code == code))
    if network is None:
        raise NetworkNotFound(f"No network {code!r}")
    return network


def own_network_id(principal: Principal, code: str) -> uuid.UUID | None:
    """The id of the key's own network when `code` names it; None for a platform key (it may
    name any network: look it up); 404 for a network that is not the key's."""
    if principal.role is Role.platform:
        return None
    if principal.network_code != code or principal.network_id is None:
        raise NetworkNotFound(f"No network {code!r}")
    return principal.network_id


async def network_id(session: AsyncSession, principal: Principal, code: str) -> uuid.UUID:
    """Like get_network, without a query when the key belongs to the network (the hot path)."""
    own = own_network_id(principal, code)
    if own is not None:
        return own
    found = (await session.execute(select(Network.id).where(Network.code == code))).scalar()
    if found is None:
        raise NetworkNotFound(f"No network {code!r}")
    return found


async def list_networks(session: AsyncSession) -> list[Network]:
    return list(await session.scalars(select(Network).order_by(Network.code)))


async def update_network(session: AsyncSession, network: Network, data: NetworkUpdate) -> Network:
    """Names, the defaults for accounts opened from now on (existing accounts keep their limits
    unless the operator applies the defaults to them: limits.service.apply_defaults), and
    whether the federation descriptor is public (read by federation.keys.descriptor)."""
    if {"default_credit_limit", "default_balance_max", "descriptor_public"} & data.model_fields_set:
        if not data.reason:
            raise ValidationProblem(
                "reason: required when the default limits or descriptor_public change"
            )
        await explain(session, data.reason)
    for field in data.model_fields_set - {"reason"}:
        value = getattr(data, field)
        if value is None and field != "default_balance_max":
            continue
        setattr(network, field, value)
    await session.flush()
    return network
