"""Settlements that finish: a settlement in full, of a zero balance too, and cancelled ones.

Issue 16, item 5. A link could not be settled to zero: each transfer's conversion rounds down
and leaves the remainder with the sending side, so after settling all it could one side's link
stayed at +2 while the other's was at 0. A settlement of a side's whole link balance is now in
full: its transfer states both sides' whole balances (federation/settlements.py), and a side
whose balance is zero while the peer's is not settles in full by sending nothing. So:

- `transfers_amounts_range_check`: `amount_sent` may be 0 for a transfer of kind 'settlement'
  (the settlement in full of a zero balance); every other transfer still sends at least 1.
- `settlements_amount_range_check`: a settlement's amount may be 0 (the same settlement).
- `settlements_status_valid_check`: a new status, 'cancelled': an operator cancels a settlement
  recorded and not executed (agreed, or refused by the peer); the reference may be recorded
  again.
- `settlements.status_reason`: why it was cancelled, set exactly while it is cancelled
  (`settlements_cancelled_check`).

The downgrade restores the old checks; it fails while a row uses what they forbid (a transfer
or settlement of 0, a cancelled settlement), rather than deleting history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 16:50:23.054061
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_AMOUNT = 9007199254740991


def upgrade() -> None:
    op.add_column("settlements", sa.Column("status_reason", sa.Text(), nullable=True))
    op.drop_constraint(op.f("settlements_status_valid_check"), "settlements", type_="check")
    op.create_check_constraint(
        op.f("settlements_status_valid_check"),
        "settlements",
        "status IN ('agreed', 'sent', 'executed', 'refused', 'cancelled')",
    )
    op.create_check_constraint(
        op.f("settlements_cancelled_check"),
        "settlements",
        "(status = 'cancelled') = (status_reason IS NOT NULL)",
    )
    op.drop_constraint(op.f("settlements_amount_range_check"), "settlements", type_="check")
    op.create_check_constraint(
        op.f("settlements_amount_range_check"),
        "settlements",
        f"amount BETWEEN 0 AND {MAX_AMOUNT}",
    )
    op.drop_constraint(op.f("transfers_amounts_range_check"), "transfers", type_="check")
    op.create_check_constraint(
        op.f("transfers_amounts_range_check"),
        "transfers",
        f"(amount_sent BETWEEN 1 AND {MAX_AMOUNT} OR (kind = 'settlement' AND amount_sent = 0))"
        f" AND amount_received BETWEEN 0 AND {MAX_AMOUNT}",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("transfers_amounts_range_check"), "transfers", type_="check")
    op.create_check_constraint(
        op.f("transfers_amounts_range_check"),
        "transfers",
        f"amount_sent BETWEEN 1 AND {MAX_AMOUNT} AND amount_received BETWEEN 0 AND {MAX_AMOUNT}",
    )
    op.drop_constraint(op.f("settlements_amount_range_check"), "settlements", type_="check")
    op.create_check_constraint(
        op.f("settlements_amount_range_check"),
        "settlements",
        f"amount BETWEEN 1 AND {MAX_AMOUNT}",
    )
    op.drop_constraint(op.f("settlements_cancelled_check"), "settlements", type_="check")
    op.drop_constraint(op.f("settlements_status_valid_check"), "settlements", type_="check")
    op.create_check_constraint(
        op.f("settlements_status_valid_check"),
        "settlements",
        "status IN ('agreed', 'sent', 'executed', 'refused')",
    )
    op.drop_column("settlements", "status_reason")
