"""SQL of this network's identity: the network, and its signing keys."""

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation.repository.rows import ActiveKey, NetworkRow, NodeKeyRow, of


async def get_network_by_code(session: AsyncSession, code: str) -> NetworkRow | None:
    row = (
        await session.execute(
            text(
                "SELECT id, code, name, unit_name, unit_symbol, scale, descriptor_public"
                " FROM networks WHERE code = :c"
            ),
            {"c": code},
        )
    ).one_or_none()
    return None if row is None else of(NetworkRow, row._mapping)


async def network_code(session: AsyncSession, network_id: uuid.UUID) -> str:
    return str(
        await session.scalar(text("SELECT code FROM networks WHERE id = :n"), {"n": network_id})
    )


async def has_active_key(session: AsyncSession, network_id: uuid.UUID) -> bool:
    found = await session.scalar(
        text("SELECT 1 FROM node_keys WHERE network_id = :n AND status = 'active'"),
        {"n": network_id},
    )
    return found is not None


async def insert_active_key(
    session: AsyncSession,
    network_id: uuid.UUID,
    key_id: str,
    public_key: bytes,
    sealed_private_key: bytes,
) -> None:
    """Adds the network's active key, unless another transaction added one first."""
    # The key's audit record names who made it: the caller's actor when there is one (an
    # operator's request), else federation itself.
    await session.execute(
        text(
            "SELECT set_config('mutualcredit.actor',"
            " coalesce(nullif(current_setting('mutualcredit.actor', true), ''),"
            " 'system:federation'), true)"
        )
    )
    await session.execute(
        text(
            "INSERT INTO node_keys (network_id, key_id, public_key, sealed_private_key)"
            " VALUES (:n, :k, :p, :s)"
            " ON CONFLICT (network_id) WHERE status = 'active' DO NOTHING"
        ),
        {"n": network_id, "k": key_id, "p": public_key, "s": sealed_private_key},
    )


async def get_active_key(session: AsyncSession, network_id: uuid.UUID) -> ActiveKey:
    row = (
        await session.execute(
            text(
                "SELECT k.key_id, k.sealed_private_key, n.code AS network_code FROM node_keys k"
                " JOIN networks n ON n.id = k.network_id"
                " WHERE k.network_id = :n AND k.status = 'active'"
            ),
            {"n": network_id},
        )
    ).one()
    return of(ActiveKey, row._mapping)


async def retire_active_key(
    session: AsyncSession, network_id: uuid.UUID, grace_seconds: int
) -> datetime:
    """Retires the network's active key, which peers accept for `grace_seconds` more; returns
    that moment (expires_at)."""
    expires_at = await session.scalar(
        text(
            "UPDATE node_keys SET status = 'retired', retired_at = now(),"
            " expires_at = now() + make_interval(secs => :g)"
            " WHERE network_id = :n AND status = 'active' RETURNING expires_at"
        ),
        {"n": network_id, "g": grace_seconds},
    )
    assert isinstance(expires_at, datetime)
    return expires_at


async def get_public_key(session: AsyncSession, key_id: str) -> bytes:
    public = await session.scalar(
        text("SELECT public_key FROM node_keys WHERE key_id = :k"), {"k": key_id}
    )
    return bytes(public)


async def list_node_keys(session: AsyncSession, network_id: uuid.UUID) -> list[NodeKeyRow]:
    rows = await session.execute(
        text(
            "SELECT key_id, public_key, status, created_at, retired_at, expires_at FROM node_keys"
            " WHERE network_id = :n ORDER BY created_at"
        ),
        {"n": network_id},
    )
    return [of(NodeKeyRow, r) for r in rows.mappings()]
