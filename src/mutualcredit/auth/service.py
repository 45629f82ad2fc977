"""API keys: minting, authenticating, revoking.

A key reads `mc_<key_id>_<secret>`. `key_id` is public (it names the key in listings and logs);
`secret` is 32 random bytes, shown once and stored only as SHA-256. A slow password hash is not
needed: nobody can guess 256 random bits, so a fast hash of them is as strong and keeps
authentication cheap on the hot path.
"""

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.auth.errors import ApiKeyNotFound, LastOperatorKey
from mutualcredit.auth.models import ApiKey, Role
from mutualcredit.errors import Unauthorized

PREFIX = "mc"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and the scope its role gives it."""

    key_uuid: uuid.UUID
    key_id: str
    role: Role
    actor: str
    network_id: uuid.UUID | None
    network_code: str | None
    account_id: uuid.UUID | None
    account_code: str | None


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_token() -> tuple[str, str, str]:
    """Returns (key_id, secret, token)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{PREFIX}_{key_id}_{secret}"


async def create_key(
    session: AsyncSession,
    *,
    role: Role,
    network_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    label: str = "",
) -> tuple[ApiKey, str]:
    """Stores a new key and returns it with its token (the only time the secret exists)."""
    key_id, secret, token = new_token()
    key = ApiKey(
        key_id=key_id,
        secret_hash=hash_secret(secret),
        role=role.value,
        network_id=network_id,
        account_id=account_id,
        label=label,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key, token


# Also names the actor for the rest of the request's transaction: the history and audit triggers
# read mutualcredit.actor. If the secret turns out wrong, the transaction rolls back with it.
AUTH_SQL = """
    SELECT k.id, k.key_id, k.secret_hash, k.role, k.revoked_at,
           k.network_id, n.code AS network_code, k.account_id, a.code AS account_code,
           set_config('mutualcredit.actor', k.role || ':' || k.key_id, true) AS actor
    FROM api_keys k
    LEFT JOIN networks n ON n.id = k.network_id
    LEFT JOIN accounts a ON a.id = k.account_id
    WHERE k.key_id = $1
"""
_AUTH_QUERY = text(AUTH_SQL.replace("$1", ":key_id"))


def _split(token: str) -> tuple[str, str]:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Unauthorized("The API key is malformed")
    return parts[1], parts[2]


def _verify(row: Mapping[Any, Any] | None, secret: str) -> Principal:
    # Compare the hash even for an unknown key id, so timing does not tell which ids exist.
    expected = row["secret_hash"] if row is not None else b"\0" * 32
    if not hmac.compare_digest(expected, hash_secret(secret)) or row is None:
        raise Unauthorized("The API key is not valid")
    if row["revoked_at"] is not None:
        raise Unauthorized("The API key has been revoked")
    return Principal(
        key_uuid=row["id"],
        key_id=row["key_id"],
        role=Role(row["role"]),
        actor=row["actor"],
        network_id=row["network_id"],
        network_code=row["network_code"],
        account_id=row["account_id"],
        account_code=row["account_code"],
    )


async def authenticate(session: AsyncSession, token: str) -> Principal:
    """Within the request's transaction (SQLAlchemy)."""
    key_id, secret = _split(token)
    row = (await session.execute(_AUTH_QUERY, {"key_id": key_id})).one_or_none()
    return _verify(row._mapping if row is not None else None, secret)


async def authenticate_raw(conn: "asyncpg.Connection", token: str) -> Principal:
    """On the trade write path's own asyncpg connection: one round trip, no transaction."""
    key_id, secret = _split(token)
    return _verify(await conn.fetchrow(AUTH_SQL, key_id), secret)


async def list_keys(session: AsyncSession, network_id: uuid.UUID) -> list[ApiKey]:
    result = await session.scalars(
        select(ApiKey).where(ApiKey.network_id == network_id).order_by(ApiKey.created_at)
    )
    return list(result)


async def revoke_key(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, key_id: str
) -> ApiKey:
    """Revokes a key (again: a no-op). An operator may not revoke the network's last active
    operator key; the network's active operator keys are locked in id order first, so two
    operators revoking each other at once cannot both succeed."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.network_id == network_id, ApiKey.key_id == key_id)
    )
    if key is None:
        raise ApiKeyNotFound(f"No key {key_id} in this network")
    if key.role == Role.operator.value and principal.role is Role.operator:
        operators = list(
            await session.scalars(
                select(ApiKey.id)
                .where(
                    ApiKey.network_id == network_id,
                    ApiKey.role == Role.operator.value,
                    ApiKey.revoked_at.is_(None),
                )
                .order_by(ApiKey.id)
                .with_for_update()
            )
        )
        if operators == [key.id]:
            raise LastOperatorKey(
                "This is the network's last active operator key: create another one first"
            )
    key = await session.scalar(
        select(ApiKey)
        .where(ApiKey.id == key.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert key is not None  # keys are never deleted
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
    return key
