"""SQL of what operators record on a link: settlements and checkpoints."""

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation.repository.rows import CheckpointRow, SettlementRow, of

_SETTLEMENT = """
    SELECT s.id, s.link_id, l.peer_code, s.reference, s.amount, s.status, s.status_reason,
           s.transfer_id, s.created_by, s.created_at
    FROM settlements s JOIN links l ON l.id = s.link_id
"""


async def get_settlement(session: AsyncSession, settlement_id: uuid.UUID) -> SettlementRow:
    row = (
        await session.execute(text(f"{_SETTLEMENT} WHERE s.id = :i"), {"i": settlement_id})
    ).one()
    return of(SettlementRow, row._mapping)


async def get_settlement_for_update(
    session: AsyncSession, link_id: uuid.UUID, reference: str
) -> SettlementRow | None:
    row = (
        await session.execute(
            text(f"{_SETTLEMENT} WHERE s.link_id = :l AND s.reference = :r FOR UPDATE OF s"),
            {"l": link_id, "r": reference},
        )
    ).one_or_none()
    return None if row is None else of(SettlementRow, row._mapping)


async def list_settlements(session: AsyncSession, link_id: uuid.UUID) -> list[SettlementRow]:
    rows = await session.execute(
        text(f"{_SETTLEMENT} WHERE s.link_id = :l ORDER BY s.created_at DESC LIMIT 100"),
        {"l": link_id},
    )
    return [of(SettlementRow, r) for r in rows.mappings()]


async def insert_settlement(
    session: AsyncSession, link_id: uuid.UUID, reference: str, amount: int, created_by: str
) -> uuid.UUID:
    """Records an agreed settlement; a reference used on the link before is an IntegrityError."""
    settlement_id = await session.scalar(
        text(
            "INSERT INTO settlements (link_id, reference, amount, status, created_by)"
            " VALUES (:l, :r, :a, 'agreed', :by) RETURNING id"
        ),
        {"l": link_id, "r": reference, "a": amount, "by": created_by},
    )
    assert isinstance(settlement_id, uuid.UUID)
    return settlement_id


async def set_settlement_status(
    session: AsyncSession,
    settlement_id: uuid.UUID,
    status: str,
    transfer_id: uuid.UUID | None = None,
) -> None:
    """A new status; and the transfer that executes the settlement, when one is sent."""
    await session.execute(
        text(
            "UPDATE settlements SET status = :s, transfer_id = coalesce(:t, transfer_id)"
            " WHERE id = :i"
        ),
        {"s": status, "t": transfer_id, "i": settlement_id},
    )


async def set_status_of_transfer(
    session: AsyncSession, transfer_id: uuid.UUID, status: str
) -> None:
    """The settlement a transfer executed: executed, or refused by the peer."""
    await session.execute(
        text("UPDATE settlements SET status = :s WHERE transfer_id = :t"),
        {"s": status, "t": transfer_id},
    )


async def record_again(session: AsyncSession, settlement_id: uuid.UUID, amount: int) -> None:
    """A refused or cancelled settlement recorded again under its reference: agreed, with the
    amount recorded now (its earlier transfer stays in the link's history)."""
    await session.execute(
        text(
            "UPDATE settlements SET status = 'agreed', amount = :a, status_reason = NULL"
            " WHERE id = :i"
        ),
        {"a": amount, "i": settlement_id},
    )


async def cancel_settlement(session: AsyncSession, settlement_id: uuid.UUID, reason: str) -> None:
    await session.execute(
        text("UPDATE settlements SET status = 'cancelled', status_reason = :r WHERE id = :i"),
        {"r": reason, "i": settlement_id},
    )


async def mark_executed(
    session: AsyncSession, link_id: uuid.UUID, reference: str | None, transfer_id: uuid.UUID
) -> None:
    """The owing side: the peer's settlement transfer is booked."""
    await session.execute(
        text(
            "UPDATE settlements SET status = 'executed', transfer_id = :t"
            " WHERE link_id = :l AND reference = :r"
        ),
        {"t": transfer_id, "l": link_id, "r": reference},
    )


async def insert_checkpoint(
    session: AsyncSession,
    link_id: uuid.UUID,
    payload: dict[str, Any],
    signatures: dict[str, Any],
) -> CheckpointRow:
    row = (
        await session.execute(
            text(
                "INSERT INTO link_checkpoints (link_id, payload, signatures)"
                " VALUES (:l, CAST(:p AS jsonb), CAST(:s AS jsonb)) RETURNING id, created_at"
            ),
            {
                "l": link_id,
                "p": orjson.dumps(payload).decode(),
                "s": orjson.dumps(signatures).decode(),
            },
        )
    ).one()
    return CheckpointRow(
        id=row.id, payload=payload, signatures=signatures, created_at=row.created_at
    )


async def list_checkpoints(session: AsyncSession, link_id: uuid.UUID) -> list[CheckpointRow]:
    rows = await session.execute(
        text(
            "SELECT id, payload, signatures, created_at FROM link_checkpoints"
            " WHERE link_id = :l ORDER BY id DESC LIMIT 100"
        ),
        {"l": link_id},
    )
    return [of(CheckpointRow, r) for r in rows.mappings()]
