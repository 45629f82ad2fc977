"""SQL of links: the link (one text of it with its network's and accounts' codes), its chain
head, the peer's keys and the nonces of its signed requests, and the link's accounts."""

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts.models import RESERVED_KINDS
from mutualcredit.federation.repository.health import HEALTH_COLUMNS, HEALTH_JOINS
from mutualcredit.federation.repository.rows import (
    AccountRow,
    ChainHead,
    LinkHealthRow,
    LinkOverview,
    LinkRow,
    of,
)

# ---------------------------------------------------------------------------------------------
# Links: one text of the link with its network's and accounts' codes, several ways to find it
# ---------------------------------------------------------------------------------------------

_LINK_COLUMNS = """
    l.id, l.network_id, n.code AS network_code, l.peer_code, l.peer_url, l.status,
    l.status_reason, l.account_id, a.code AS account_code, l.settlement_account_id,
    s.code AS settlement_account_code, l.rate_num, l.rate_den, l.rate_version, l.default_route,
    l.agreed_at, l.peer_status, l.told_status, l.created_at
"""
_LINK_FROM = """
    FROM links l
    JOIN networks n ON n.id = l.network_id
    JOIN accounts a ON a.id = l.account_id
    JOIN accounts s ON s.id = l.settlement_account_id
"""
_LINK = f"SELECT {_LINK_COLUMNS} {_LINK_FROM}"


async def _links(session: AsyncSession, where: str, params: dict[str, Any]) -> list[LinkRow]:
    rows = await session.execute(text(f"{_LINK} {where}"), params)
    return [of(LinkRow, r) for r in rows.mappings()]


async def _link(session: AsyncSession, where: str, params: dict[str, Any]) -> LinkRow | None:
    found = await _links(session, where, params)
    return found[0] if found else None


async def get_link(session: AsyncSession, network_id: uuid.UUID, peer: str) -> LinkRow | None:
    return await _link(
        session, "WHERE l.network_id = :n AND l.peer_code = :p", {"n": network_id, "p": peer}
    )


async def get_link_for_update(
    session: AsyncSession, network_id: uuid.UUID, peer: str
) -> LinkRow | None:
    """The link, locked against other changes of it, as it is once locked. FOR NO KEY UPDATE:
    signed requests hold KEY SHARE on it (chains.append says why that matters)."""
    return await _link(
        session,
        "WHERE l.network_id = :n AND l.peer_code = :p FOR NO KEY UPDATE OF l",
        {"n": network_id, "p": peer},
    )


async def get_link_by_id(session: AsyncSession, link_id: uuid.UUID) -> LinkRow:
    link = await _link(session, "WHERE l.id = :l", {"l": link_id})
    assert link is not None, link_id
    return link


async def find_link_of(session: AsyncSession, network_code: str, peer: str) -> LinkRow | None:
    """The link of the network with code `network_code` to `peer` (who signs a request)."""
    return await _link(
        session,
        "WHERE n.code = :code AND l.peer_code = :peer",
        {"code": network_code, "peer": peer},
    )


async def list_links(session: AsyncSession, network_id: uuid.UUID) -> list[LinkRow]:
    return await _links(session, "WHERE l.network_id = :n ORDER BY l.peer_code", {"n": network_id})


async def route(session: AsyncSession, network_id: uuid.UUID, network: str) -> LinkRow | None:
    """The link toward `network`: a direct link to it, else the link whose route table names
    it (one at most: link_routes is unique per network and destination), else the default
    route (the oldest, if several are). Whether the transfer was at its peer already is the
    caller's to check (inbound._forward)."""
    return await _link(
        session,
        "LEFT JOIN link_routes r ON r.link_id = l.id AND r.destination = :p"
        " WHERE l.network_id = :n AND (l.peer_code = :p OR r.destination IS NOT NULL"
        " OR l.default_route)"
        " ORDER BY (l.peer_code = :p) DESC, (r.destination IS NOT NULL) DESC, l.created_at"
        " LIMIT 1",
        {"n": network_id, "p": network},
    )


async def routes_taken(
    session: AsyncSession, network_id: uuid.UUID, destinations: list[str], link_id: uuid.UUID
) -> dict[str, str]:
    """Of `destinations`, those another link of the network routes: destination -> its peer."""
    rows = await session.execute(
        text(
            "SELECT r.destination, l.peer_code FROM link_routes r JOIN links l ON l.id = r.link_id"
            " WHERE r.network_id = :n AND r.destination = ANY(:d) AND r.link_id <> :l"
        ),
        {"n": network_id, "d": destinations, "l": link_id},
    )
    return {r.destination: r.peer_code for r in rows}


async def set_routes(
    session: AsyncSession, network_id: uuid.UUID, link_id: uuid.UUID, destinations: list[str]
) -> None:
    """Makes the link's route table `destinations`: removes the others, adds the new ones (each
    a row, so the audit log records what was added and removed, and nothing else)."""
    await session.execute(
        text("DELETE FROM link_routes WHERE link_id = :l AND destination <> ALL(:d)"),
        {"l": link_id, "d": destinations},
    )
    await session.execute(
        text(
            "INSERT INTO link_routes (network_id, link_id, destination)"
            " SELECT :n, :l, d FROM unnest(CAST(:d AS text[])) AS d ORDER BY d"
            " ON CONFLICT (link_id, destination) DO NOTHING"
        ),
        {"n": network_id, "l": link_id, "d": destinations},
    )


async def link_overviews(
    session: AsyncSession, network_id: uuid.UUID, peer: str | None
) -> list[LinkOverview]:
    """Links of the network (or the one to `peer`), with their figures, by peer."""
    rows = await session.execute(
        text(
            f"""
            SELECT {_LINK_COLUMNS}, a.balance, a.pending_debits, a.pending_credits,
                   a.credit_limit, a.balance_max,
                   (SELECT coalesce(json_agg(json_build_object('key_id', k.key_id,
                                                               'status', k.status,
                                                               'expires_at', k.expires_at)
                                             ORDER BY k.created_at), '[]')
                    FROM link_peer_keys k WHERE k.link_id = l.id) AS peer_keys,
                   ARRAY(SELECT r.destination FROM link_routes r WHERE r.link_id = l.id
                         ORDER BY r.destination) AS routes,
                   {HEALTH_COLUMNS}
            {_LINK_FROM}
            {HEALTH_JOINS}
            WHERE l.network_id = :n AND (CAST(:peer AS text) IS NULL OR l.peer_code = :peer)
            ORDER BY l.peer_code
            """
        ),
        {"n": network_id, "peer": peer},
    )
    return [
        LinkOverview(
            link=of(LinkRow, r),
            balance=r["balance"],
            pending_debits=r["pending_debits"],
            pending_credits=r["pending_credits"],
            credit_limit=r["credit_limit"],
            balance_max=r["balance_max"],
            peer_keys=r["peer_keys"],
            routes=list(r["routes"]),
            health=of(LinkHealthRow, r),
        )
        for r in rows.mappings()
    ]


async def insert_account(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    code: str,
    name: str,
    kind: str,
    credit_limit: int,
    balance_max: int | None,
) -> uuid.UUID:
    """A link's account (the peer as one account, or where its settlements land). Only the
    protocol writes these (trigger accounts_protocol_only): it says so for this statement."""
    await session.execute(text("SELECT set_config('mutualcredit.federation', 'on', true)"))
    account_id = await session.scalar(
        text(
            "INSERT INTO accounts (network_id, code, name, kind, credit_limit, balance_max)"
            " VALUES (:n, :c, :name, :kind, :cl, :bm) RETURNING id"
        ),
        {"n": network_id, "c": code, "name": name, "kind": kind, "cl": credit_limit,
         "bm": balance_max},
    )  # fmt: skip
    await session.execute(text("SELECT set_config('mutualcredit.federation', 'off', true)"))
    assert isinstance(account_id, uuid.UUID)
    return account_id


async def insert_link(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    peer: str,
    peer_url: str,
    account_id: uuid.UUID,
    settlement_account_id: uuid.UUID,
    rate_num: int,
    rate_den: int,
    default_route: bool,
) -> uuid.UUID:
    link_id = await session.scalar(
        text(
            "INSERT INTO links (network_id, peer_code, peer_url, account_id,"
            " settlement_account_id, rate_num, rate_den, default_route)"
            " VALUES (:n, :p, :u, :a, :s, :num, :den, :dr) RETURNING id"
        ),
        {"n": network_id, "p": peer, "u": peer_url, "a": account_id,
         "s": settlement_account_id, "num": rate_num, "den": rate_den, "dr": default_route},
    )  # fmt: skip
    assert isinstance(link_id, uuid.UUID)
    return link_id


async def mark_agreed(session: AsyncSession, link: LinkRow, version: int) -> bool:
    """Marks the link agreed at `version`, if its rate is still the one that was compared."""
    marked = await session.scalar(
        text(
            "UPDATE links SET agreed_at = coalesce(agreed_at, now()), rate_version = :v,"
            " status = CASE WHEN status = 'proposed' THEN 'active' ELSE status END"
            " WHERE id = :l AND rate_num = :num AND rate_den = :den RETURNING 1"
        ),
        {"l": link.id, "v": version, "num": link.rate_num, "den": link.rate_den},
    )
    return marked is not None


async def update_link(
    session: AsyncSession,
    link_id: uuid.UUID,
    *,
    peer_url: str | None,
    default_route: bool | None,
    new_rate: tuple[int, int] | None,
) -> None:
    """Changes what is given. A new rate is a proposal: a new version, not agreed, and an
    active link goes back to proposed."""
    await session.execute(
        text(
            "UPDATE links SET peer_url = coalesce(:u, peer_url),"
            " default_route = coalesce(:dr, default_route),"
            " rate_num = CASE WHEN :new THEN :num ELSE rate_num END,"
            " rate_den = CASE WHEN :new THEN :den ELSE rate_den END,"
            " rate_version = CASE WHEN :new THEN rate_version + 1 ELSE rate_version END,"
            " agreed_at = CASE WHEN :new THEN NULL ELSE agreed_at END,"
            " status = CASE WHEN :new AND status = 'active' THEN 'proposed' ELSE status END"
            " WHERE id = :l"
        ),
        {
            "l": link_id,
            "u": peer_url,
            "dr": default_route,
            "new": new_rate is not None,
            "num": new_rate[0] if new_rate is not None else None,
            "den": new_rate[1] if new_rate is not None else None,
        },
    )


async def set_link_status(
    session: AsyncSession, link_id: uuid.UUID, status: str, reason: str
) -> None:
    await session.execute(
        text("UPDATE links SET status = :s, status_reason = :r WHERE id = :l"),
        {"s": status, "r": reason, "l": link_id},
    )


async def set_peer_status(session: AsyncSession, link_id: uuid.UUID, status: str) -> None:
    """What the peer told this side of its own side of the link (suspended or active)."""
    await session.execute(
        text("UPDATE links SET peer_status = :s WHERE id = :l AND peer_status IS DISTINCT FROM :s"),
        {"s": status, "l": link_id},
    )


async def links_to_tell(session: AsyncSession, backoff_cap: float) -> list[LinkRow]:
    """Links whose peer has not been told this side's suspension, or the resume after one;
    a peer whose calls fail is tried again with the outbox's backoff (from its failures in a
    row), so that a peer gone for good does not hold up the loop."""
    return await _links(
        session,
        "LEFT JOIN link_health h ON h.link_id = l.id"
        " WHERE l.told_status IS DISTINCT FROM l.status"
        " AND (l.status = 'suspended' OR l.told_status = 'suspended')"
        " AND (h.last_failure_at IS NULL OR h.consecutive_failures = 0"
        "      OR h.last_failure_at < clock_timestamp() - make_interval(secs =>"
        "         least(:cap, 0.25 * power(2, least(h.consecutive_failures, 20)))))",
        {"cap": backoff_cap},
    )


async def mark_told(session: AsyncSession, link_id: uuid.UUID, status: str) -> None:
    """The peer acknowledged this side's `status` (if it is still the link's status)."""
    await session.execute(
        text("UPDATE links SET told_status = :s WHERE id = :l AND status = :s"),
        {"s": status, "l": link_id},
    )


async def lock_chain_head(session: AsyncSession, link_id: uuid.UUID) -> ChainHead:
    """The link's inbound chain head, the link row locked FOR NO KEY UPDATE (chains.append)."""
    row = (
        await session.execute(
            text("SELECT in_seq, in_hash FROM links WHERE id = :l FOR NO KEY UPDATE"),
            {"l": link_id},
        )
    ).one()
    return ChainHead(seq=row.in_seq, hash=bytes(row.in_hash) if row.in_hash else None)


async def set_chain_head(session: AsyncSession, link_id: uuid.UUID, seq: int, head: bytes) -> None:
    await session.execute(
        text("UPDATE links SET in_seq = :s, in_hash = :h WHERE id = :l"),
        {"s": seq, "h": head, "l": link_id},
    )


# ---------------------------------------------------------------------------------------------
# The peer's keys, and the nonces of its signed requests
# ---------------------------------------------------------------------------------------------


# A key of the peer is trusted while it is active (not revoked by this side's operator) and
# before its expiry (set when the peer rotated it away): every lookup says so in SQL.
_TRUSTED = "status = 'active' AND (expires_at IS NULL OR expires_at > now())"


async def upsert_peer_key(
    session: AsyncSession, link_id: uuid.UUID, key_id: str, public_key: bytes
) -> str:
    """Trusts the key (again, if it was revoked): 'trusted'. Nothing changes, and the answer
    says why, when the key id is known with another public key ('conflict': a key id keeps its
    public key) or the peer has rotated the key away ('retired': its expiry never moves later,
    trigger link_peer_keys_guard)."""
    row = await session.execute(
        text(
            "INSERT INTO link_peer_keys (link_id, key_id, public_key) VALUES (:l, :k, :p)"
            " ON CONFLICT (link_id, key_id) DO UPDATE SET status = 'active'"
            " WHERE link_peer_keys.public_key = excluded.public_key"
            " AND link_peer_keys.expires_at IS NULL"
            " RETURNING 1"
        ),
        {"l": link_id, "k": key_id, "p": public_key},
    )
    if row.first() is not None:
        return "trusted"
    same = await session.scalar(
        text("SELECT public_key = :p FROM link_peer_keys WHERE link_id = :l AND key_id = :k"),
        {"l": link_id, "k": key_id, "p": public_key},
    )
    return "retired" if same else "conflict"


async def peer_key_retiring(session: AsyncSession, link_id: uuid.UUID, key_id: str) -> bool:
    """Whether the peer has rotated this key away (it may still be in its grace period)."""
    found = await session.scalar(
        text(
            "SELECT expires_at IS NOT NULL FROM link_peer_keys WHERE link_id = :l AND key_id = :k"
        ),
        {"l": link_id, "k": key_id},
    )
    return bool(found)


async def retire_peer_key(
    session: AsyncSession, link_id: uuid.UUID, key_id: str, seconds: float
) -> None:
    """The peer rotated this key away: it is trusted for `seconds` more (0: no longer), or
    until the expiry it has already if that comes first."""
    await session.execute(
        text(
            "UPDATE link_peer_keys SET expires_at = least(expires_at,"
            " now() + make_interval(secs => :s))"
            " WHERE link_id = :l AND key_id = :k"
        ),
        {"l": link_id, "k": key_id, "s": seconds},
    )


async def revoke_peer_key(session: AsyncSession, link_id: uuid.UUID, key_id: str) -> bool:
    """Stops trusting the key (again: no change). False when the link has no such key."""
    row = await session.execute(
        text(
            "UPDATE link_peer_keys SET status = 'revoked' WHERE link_id = :l AND key_id = :k"
            " RETURNING 1"
        ),
        {"l": link_id, "k": key_id},
    )
    return row.first() is not None


async def peer_keys(session: AsyncSession, link_id: uuid.UUID) -> dict[str, bytes]:
    """The peer's trusted keys (active, not expired), by key id."""
    rows = await session.execute(
        text(f"SELECT key_id, public_key FROM link_peer_keys WHERE link_id = :l AND {_TRUSTED}"),
        {"l": link_id},
    )
    return {r.key_id: r.public_key for r in rows}


async def get_peer_key(session: AsyncSession, link_id: uuid.UUID, key_id: str) -> bytes | None:
    """The peer's trusted key (active, not expired) with this id, if it has one."""
    public_key = await session.scalar(
        text(
            "SELECT public_key FROM link_peer_keys"
            f" WHERE link_id = :l AND key_id = :k AND {_TRUSTED}"
        ),
        {"l": link_id, "k": key_id},
    )
    return None if public_key is None else bytes(public_key)


async def insert_nonce(session: AsyncSession, link_id: uuid.UUID, nonce: str, peer: str) -> bool:
    """Records a signed request's nonce; False if it was seen before (a replay). A fresh nonce
    also names the peer as the actor of everything the request writes (its audit records), for
    the rest of the request's transaction."""
    fresh = await session.scalar(
        text(
            "INSERT INTO federation_nonces (link_id, nonce) VALUES (:l, :n)"
            " ON CONFLICT DO NOTHING"
            " RETURNING set_config('mutualcredit.actor', 'peer:' || CAST(:peer AS text), true)"
        ),
        {"l": link_id, "n": nonce, "peer": peer},
    )
    return fresh is not None


async def prune_nonces(session: AsyncSession, window_seconds: float) -> None:
    await session.execute(
        text(
            "DELETE FROM federation_nonces WHERE seen_at < now() - make_interval(secs => :window)"
        ),
        {"window": window_seconds},
    )


# ---------------------------------------------------------------------------------------------
# The link's accounts
# ---------------------------------------------------------------------------------------------


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> AccountRow:
    row = (
        await session.execute(
            text(
                "SELECT id, code, balance, pending_debits, pending_credits FROM accounts"
                " WHERE id = :a"
            ),
            {"a": account_id},
        )
    ).one()
    return of(AccountRow, row._mapping)


async def is_reserved_account(session: AsyncSession, network_id: uuid.UUID, code: str) -> bool:
    """Whether the account is one of a link's own (kinds link and settlement), which only the
    protocol's bookings move: never a member's payer or payee across a link."""
    kind = await session.scalar(
        text("SELECT kind FROM accounts WHERE network_id = :n AND code = :c"),
        {"n": network_id, "c": code},
    )
    return kind in RESERVED_KINDS


async def lock_balances(
    session: AsyncSession, account_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Locks the accounts in id order, as every writer of the ledger does; their balances."""
    rows = await session.execute(
        text("SELECT id, balance FROM accounts WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": account_ids},
    )
    return {r.id: int(r.balance) for r in rows}
