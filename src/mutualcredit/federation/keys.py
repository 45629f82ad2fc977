"""A network's identity among networks: its signing keys and its public descriptor.

Every network gets its first Ed25519 key when federation first needs one; the private half is
kept sealed (crypto.py) and unsealed only to sign. A rotation retires the active key and makes a
new one, and tells every linked peer in a call signed with the old key, which it trusts.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.auth.permissions import require_operator
from mutualcredit.auth.service import Principal
from mutualcredit.federation import crypto, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import PeerUnreachable
from mutualcredit.federation.peers import call_peer
from mutualcredit.federation.protocol import FED
from mutualcredit.networks.errors import NetworkNotFound


async def ensure_key(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> None:
    """Every network gets its first key when federation first needs one."""
    if await repository.has_active_key(session, network_id):
        return
    code = await repository.network_code(session, network_id)
    key = crypto.new_node_key(code, fed.secret_key)
    await repository.insert_active_key(
        session, network_id, key.key_id, key.public_key, key.sealed_private_key
    )


async def signer(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> crypto.Signer:
    """The network's active key, unsealed to sign."""
    await ensure_key(fed, session, network_id)
    key = await repository.get_active_key(session, network_id)
    return crypto.Signer(
        network_code=key.network_code,
        key_id=key.key_id,
        private_key=crypto.unseal(key.sealed_private_key, key.key_id, fed.secret_key),
    )


async def descriptor(fed: Federation, session: AsyncSession, code: str) -> dict[str, Any]:
    """The public document peers fetch: address, unit, endpoints, keys."""
    network = await repository.get_network_by_code(session, code)
    if network is None:
        raise NetworkNotFound(f"No network {code!r}")
    await ensure_key(fed, session, network.id)
    keys = await repository.list_node_keys(session, network.id)
    base = fed.public_url.rstrip("/")
    return {
        "protocol": crypto.PROTOCOL,
        "address": code,
        "name": network.name,
        "unit": {"name": network.unit_name, "symbol": network.unit_symbol, "scale": network.scale},
        "url": base,
        "endpoints": {
            name: f"{base}{FED}/{code}/{name}"
            for name in ("descriptor", "link", "transfers", "statement", "checkpoints", "keys")
        },
        "keys": [
            {
                "key_id": k.key_id,
                "public_key": crypto.b64e(k.public_key),
                "status": k.status,
                "created_at": k.created_at,
                "retired_at": k.retired_at,
            }
            for k in keys
        ],
    }


async def rotate_key(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID
) -> dict[str, Any]:
    """A new signing key; the old one is retired. Every linked peer is told, in a request
    signed with the old key (which it trusts), so it registers the new one."""
    require_operator(principal)
    old_sign = await signer(fed, session, network_id)
    await repository.retire_active_key(session, network_id)
    new_sign = await signer(fed, session, network_id)
    public = await repository.get_public_key(session, new_sign.key_id)
    announced: dict[str, str] = {}
    for link in await repository.list_links(session, network_id):
        keys = await repository.peer_keys(session, link.id)
        try:
            answer = await call_peer(
                fed,
                old_sign,
                link,
                keys,
                "POST",
                f"{FED}/{link.peer_code}/keys",
                {"key_id": new_sign.key_id, "public_key": crypto.b64e(public)},
            )
            announced[link.peer_code] = (
                "registered" if answer.status < 300 else str(answer.body.get("code"))
            )
        except PeerUnreachable as exc:
            announced[link.peer_code] = f"unreachable: {exc.detail}"
    return {"key_id": new_sign.key_id, "retired_key_id": old_sign.key_id, "peers": announced}
