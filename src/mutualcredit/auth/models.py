"""API keys. The secret is never stored: only SHA-256 of it, beside a public `key_id`.

A key has one role and the scope that role needs (CHECK api_keys_role_scope_check):
platform (no network), operator and auditor (one network), member (one account of one network).
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    LargeBinary,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualcredit.db import Base


class Role(StrEnum):
    platform = "platform"
    operator = "operator"
    auditor = "auditor"
    member = "member"


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "(role = 'platform' AND network_id IS NULL AND account_id IS NULL)"
            " OR (role IN ('operator', 'auditor')"
            " AND network_id IS NOT NULL AND account_id IS NULL)"
            " OR (role = 'member' AND network_id IS NOT NULL AND account_id IS NOT NULL)",
            name="role_scope",
        ),
        ForeignKeyConstraint(["network_id", "account_id"], ["accounts.network_id", "accounts.id"]),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    key_id: Mapped[str] = mapped_column(Text, unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(Text)
    network_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("networks.id"))
    account_id: Mapped[uuid.UUID | None]
    label: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
