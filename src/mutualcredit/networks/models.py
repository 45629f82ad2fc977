"""A network: one mutual credit system with one unit of account; the tenant boundary.

Invariants kept here: `code` and `scale` never change after creation (trigger `networks_fixed`),
because the code is the network's address and the scale gives every stored amount its meaning.
"""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    SmallInteger,
    Text,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.db import Base


class Network(Base):
    __tablename__ = "networks"
    __table_args__ = (
        CheckConstraint("code ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'", name="code_format"),
        CheckConstraint("scale BETWEEN 0 AND 9", name="scale_range"),
        CheckConstraint(
            f"default_credit_limit BETWEEN 0 AND {MAX_AMOUNT}", name="default_credit_limit_range"
        ),
        CheckConstraint(
            f"default_balance_max IS NULL OR default_balance_max BETWEEN 0 AND {MAX_AMOUNT}",
            name="default_balance_max_range",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    unit_name: Mapped[str] = mapped_column(Text)
    unit_symbol: Mapped[str] = mapped_column(Text)
    scale: Mapped[int] = mapped_column(SmallInteger)
    default_credit_limit: Mapped[int] = mapped_column(BigInteger)
    default_balance_max: Mapped[int | None] = mapped_column(BigInteger)
    # Whether anyone may read the network's federation descriptor (federation/keys.py); when
    # not, it is given to the network's own operators only, to hand to a peer out of band.
    descriptor_public: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
