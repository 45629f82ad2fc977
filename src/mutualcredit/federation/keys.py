"""A network's identity among networks: its signing keys and its descriptor.

Keys are made only by an operator's action: the first when the operator first rotates (which,
with no key yet, only makes one) or creates a link; reading a descriptor never writes. The
private half is kept sealed (crypto.py) and unsealed only to sign; only the active key signs.

A rotation retires the active key and makes a new one, at once on this side, and tells every
linked peer in a notice signed twice: the request by the old key, which the peer trusts
(continuity), and the rotation's statement inside it by the new key (possession). The notice
says when the old key retires: after the grace period the operator chose, or at once when the
operator says it is compromised. Each peer trusts the new key and stops accepting the old one
at that moment (links.receive_key).

The residual risk of a compromised key: whoever holds it can also rotate, first, to a key of
their own, and the peers would follow that notice as they follow this one. Nothing signed with
the stolen key can tell the two apart; the remedy is out of band: each peer's operator revokes
the stranger's key and registers the real one by hand (POST .../peer-keys).

The descriptor (address, unit, URL, keys) is what a peer's operator reads to link. A network
chooses whether it is public (networks.descriptor_public, PATCH /v1/networks/{network}): when
it is not, or when the network has no key yet, the public read answers exactly as for a network
that does not exist; its operators always read it through the operator API (identity).
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.context import explain
from mutualcredit.auth.permissions import require_operator
from mutualcredit.auth.service import Principal
from mutualcredit.federation import crypto, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import PeerUnreachable
from mutualcredit.federation.peers import call_peer
from mutualcredit.federation.protocol import FED
from mutualcredit.federation.schemas import KeyRotation
from mutualcredit.networks.errors import NetworkNotFound


async def ensure_key(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> None:
    """The network's first key, made by an operator's action (a link, a rotation)."""
    if await repository.has_active_key(session, network_id):
        return
    code = await repository.network_code(session, network_id)
    key = crypto.new_node_key(code, fed.secret_key)
    await repository.insert_active_key(
        session, network_id, key.key_id, key.public_key, key.sealed_private_key
    )


async def signer(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> crypto.Signer:
    """The network's active key, unsealed to sign. Every network that signs has one: it signs
    only over a link, and creating a link makes the key."""
    key = await repository.get_active_key(session, network_id)
    return crypto.Signer(
        network_code=key.network_code,
        key_id=key.key_id,
        private_key=crypto.unseal(key.sealed_private_key, key.key_id, fed.secret_key),
    )


async def descriptor(
    fed: Federation, session: AsyncSession, code: str, *, public: bool
) -> dict[str, Any]:
    """The document a peer's operator reads to link: address, unit, endpoints, keys. Read
    only. `public`: the anonymous read, answered only for a network whose descriptor is public
    and which has a key; any other network is not found, in the same words as one that does
    not exist."""
    network = await repository.get_network_by_code(session, code)
    keys = [] if network is None else await repository.list_node_keys(session, network.id)
    if network is None or (public and not (network.descriptor_public and keys)):
        raise NetworkNotFound(f"No network {code!r}")
    base = fed.public_url.rstrip("/")
    return {
        "protocol": crypto.PROTOCOL,
        "address": code,
        "name": network.name,
        "unit": {"name": network.unit_name, "symbol": network.unit_symbol, "scale": network.scale},
        "url": base,
        "public": network.descriptor_public,
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
                "expires_at": k.expires_at,
            }
            for k in keys
        ],
    }


async def rotate_key(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    data: KeyRotation,
) -> dict[str, Any]:
    """A new signing key, used from now on; the old one is retired, and peers accept it until
    `grace_seconds` from now (not at all once compromised). Every linked peer is told; one that
    cannot be told is named in the answer, for its operator to register the key by hand. A
    network without a key gets its first one, and there is nothing to tell."""
    require_operator(principal)
    if data.reason:
        await explain(session, data.reason)
    if not await repository.has_active_key(session, network_id):
        await ensure_key(fed, session, network_id)
        first = await repository.get_active_key(session, network_id)
        return {
            "key_id": first.key_id,
            "retired_key_id": None,
            "retire_at": None,
            "compromised": False,
            "peers": {},
        }
    old_sign = await signer(fed, session, network_id)
    grace = 0 if data.compromised else data.grace_seconds
    expires_at = await repository.retire_active_key(session, network_id, grace)
    await ensure_key(fed, session, network_id)
    new_sign = await signer(fed, session, network_id)
    public = crypto.b64e(await repository.get_public_key(session, new_sign.key_id))
    retire_at = int(expires_at.timestamp())
    announced: dict[str, str] = {}
    for link in await repository.list_links(session, network_id):
        statement = crypto.key_base(
            old_sign.network_code,
            link.peer_code,
            old_sign.key_id,
            new_sign.key_id,
            public,
            str(retire_at),
            data.compromised,
        )
        notice = {
            "key_id": new_sign.key_id,
            "public_key": public,
            "retire_at": retire_at,
            "compromised": data.compromised,
            "proof": new_sign.sign(statement),
        }
        keys = await repository.peer_keys(session, link.id)
        try:
            answer = await call_peer(
                fed, old_sign, link, keys, "POST", f"{FED}/{link.peer_code}/keys", notice
            )
            announced[link.peer_code] = (
                "registered" if answer.status < 300 else str(answer.body.get("code"))
            )
        except PeerUnreachable as exc:
            announced[link.peer_code] = f"unreachable: {exc.detail}"
    return {
        "key_id": new_sign.key_id,
        "retired_key_id": old_sign.key_id,
        "retire_at": expires_at,
        "compromised": data.compromised,
        "peers": announced,
    }
