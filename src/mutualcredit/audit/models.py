"""The audit log: one append-only, hash-chained record per state change of a network.

Records are inserted by PostgreSQL triggers on networks, accounts (settings, not balances),
trades, API keys, payment requests and payee approvals, in the writer's transaction, unsealed.
The sealer (SQL function mc_audit_seal, run by every worker in the background) chains them per
network in the order it finds them committed:

    seq = previous seq + 1,  prev_hash = previous hash (genesis: mc_audit_genesis(network)),
    hash = sha256(prev_hash || mc_audit_payload(record, seq))

so an edit or deletion anywhere, even by direct SQL with the guards switched off, breaks the chain
at that record. `audit_heads` holds each network's last sealed seq and hash.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import conv

from mutualcredit.db import Base


class AuditRecord(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(
            "(seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL)",
            name="sealed_whole",
        ),
        UniqueConstraint("network_id", "seq"),
        Index(
            conv("audit_log_unsealed_network_id_id_idx"),
            "network_id",
            "id",
            postgresql_where=text("hash IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[Any | None] = mapped_column(JSONB(astext_type=Text()))
    after: Mapped[Any | None] = mapped_column(JSONB(astext_type=Text()))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    hash: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditHead(Base):
    __tablename__ = "audit_heads"

    network_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
