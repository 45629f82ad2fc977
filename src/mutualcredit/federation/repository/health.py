"""SQL of a link's health: each call to its peer noted, and the figures operators and /metrics
read (the last signed answer, failed calls in a row, transfers waiting and disputed)."""

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The health columns of a link `l` (rows.LinkHealthRow), with the joins they need.
HEALTH_COLUMNS = """
    h.last_contact_at, coalesce(h.consecutive_failures, 0) AS consecutive_failures,
    h.last_failure_at, w.transfers_waiting, w.oldest_waiting_at, w.transfers_disputed
"""
HEALTH_JOINS = """
    LEFT JOIN link_health h ON h.link_id = l.id
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.status = 'prepared') AS transfers_waiting,
               min(t.created_at) FILTER (WHERE t.status = 'prepared') AS oldest_waiting_at,
               count(*) FILTER (WHERE t.status = 'disputed') AS transfers_disputed
        FROM transfers t
        WHERE t.link_id = l.id AND t.direction = 'out' AND t.status IN ('prepared', 'disputed')
    ) w
"""


async def note_contact(session: AsyncSession, link_id: uuid.UUID) -> None:
    """The peer gave a signed answer: failures reset. Written only when something changes or a
    second has passed, so that a busy link does not queue its deliveries on this one row."""
    await session.execute(
        text(
            "INSERT INTO link_health AS h (link_id, last_contact_at, consecutive_failures)"
            " VALUES (:l, clock_timestamp(), 0)"
            " ON CONFLICT (link_id) DO UPDATE"
            " SET last_contact_at = excluded.last_contact_at, consecutive_failures = 0"
            " WHERE h.consecutive_failures <> 0 OR h.last_contact_at IS NULL"
            " OR h.last_contact_at < excluded.last_contact_at - interval '1 second'"
        ),
        {"l": link_id},
    )


async def note_failure(session: AsyncSession, link_id: uuid.UUID) -> None:
    """A call to the peer got no signed answer."""
    await session.execute(
        text(
            "INSERT INTO link_health AS h (link_id, consecutive_failures, last_failure_at)"
            " VALUES (:l, 1, clock_timestamp())"
            " ON CONFLICT (link_id) DO UPDATE"
            " SET consecutive_failures = h.consecutive_failures + 1,"
            " last_failure_at = excluded.last_failure_at"
        ),
        {"l": link_id},
    )


async def all_link_health(session: AsyncSession) -> list[dict[str, Any]]:
    """Every link of the deployment with its network's code and its health, for /metrics."""
    rows = await session.execute(
        text(
            f"SELECT n.code AS network, l.peer_code AS peer, {HEALTH_COLUMNS}"
            f" FROM links l JOIN networks n ON n.id = l.network_id {HEALTH_JOINS}"
        )
    )
    return [dict(r) for r in rows.mappings()]
