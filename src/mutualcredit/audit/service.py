"""Reading and verifying the audit log.

Verification recomputes the whole chain of a network from its genesis: every sequence number
present, every record linked to the previous one, every hash equal to
sha256(prev_hash || payload). The payload bytes come from mc_audit_payload (the function the
sealer uses); everything else (genesis, links, hashes) is computed here, independently of the
database. A deletion shows as a missing sequence number (or a head beyond the last record); an
edit as a hash that no longer matches. Anchoring the head hash somewhere else (a peer, a
printout) also exposes a rewrite of the whole chain.
"""

import hashlib
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.models import AuditHead, AuditRecord
from mutualcredit.audit.schemas import AuditEntry, BrokenLink, Verification
from mutualcredit.pagination import after_int, page

PAGE = 2000

_CHAIN = text(
    """
    SELECT seq, prev_hash, hash,
           mc_audit_payload(network_id, seq, occurred_at, actor, action, subject_type,
                            subject_id, reason, before, after) AS payload
    FROM audit_log
    WHERE network_id = :network_id AND seq IS NOT NULL AND seq > :after
    ORDER BY seq
    LIMIT :page
    """
)
_UNSEALED = text("SELECT count(*) FROM audit_log WHERE network_id = :network_id AND hash IS NULL")


def genesis(network_id: uuid.UUID) -> bytes:
    return hashlib.sha256(f"mutualcredit audit log of network {network_id}".encode()).digest()


async def verify(session: AsyncSession, network_id: uuid.UUID, network_code: str) -> Verification:
    previous = genesis(network_id)
    expected = 1
    broken: BrokenLink | None = None
    while broken is None:
        rows = (
            await session.execute(
                _CHAIN, {"network_id": network_id, "after": expected - 1, "page": PAGE}
            )
        ).all()
        for row in rows:
            if row.seq != expected:
                broken = BrokenLink(seq=expected, problem="record missing")
            elif row.prev_hash != previous:
                broken = BrokenLink(seq=row.seq, problem="link to the previous record broken")
            elif hashlib.sha256(previous + row.payload).digest() != row.hash:
                broken = BrokenLink(seq=row.seq, problem="record altered")
            if broken is not None:
                break
            previous = row.hash
            expected += 1
        if len(rows) < PAGE:
            break
    last = expected - 1
    head = await session.get(AuditHead, network_id)
    if broken is None and head is not None and (head.seq != last or head.hash != previous):
        broken = BrokenLink(
            seq=last + 1, problem=f"records after {last} missing (the head is at {head.seq})"
        )
    unsealed = int((await session.execute(_UNSEALED, {"network_id": network_id})).scalar_one())
    return Verification(
        network=network_code,
        ok=broken is None,
        sealed=last,
        unsealed=unsealed,
        head_seq=head.seq if head is not None else 0,
        head_hash=head.hash.hex() if head is not None else None,
        first_broken=broken,
    )


async def list_records(
    session: AsyncSession,
    network_id: uuid.UUID,
    *,
    action: str | None,
    subject_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditEntry], str | None]:
    query = select(AuditRecord).where(AuditRecord.network_id == network_id)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    if subject_id is not None:
        query = query.where(AuditRecord.subject_id == subject_id)
    after = after_int(cursor)
    if after is not None:
        query = query.where(AuditRecord.id > after)
    rows = list(await session.scalars(query.order_by(AuditRecord.id).limit(limit + 1)))
    records, next_cursor = page(rows, limit, lambda r: (r.id,))
    return [_entry(r) for r in records], next_cursor


def _entry(record: AuditRecord) -> AuditEntry:
    fields: dict[str, Any] = {
        c: getattr(record, c)
        for c in (
            "id",
            "seq",
            "occurred_at",
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "reason",
            "before",
            "after",
        )
    }
    return AuditEntry(**fields, hash=record.hash.hex() if record.hash else None)
