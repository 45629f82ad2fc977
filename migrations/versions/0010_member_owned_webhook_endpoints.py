"""Member-owned webhook endpoints.

A member may register endpoints for its own account: `webhook_endpoints.member_account` names
the member account whose endpoint it is (NULL: an operator's). The database keeps such an
endpoint to that account: CHECK `webhook_endpoints_member_own_account_check` (its `account`
filter is the member's own account, so it can never be widened to the network), and composite
foreign keys from `(network_id, account)` and `(network_id, member_account)` to the accounts of
the same network (an endpoint never names an account that does not exist, or one of another
network). The audit trigger `webhook_endpoints_audit` now names `member_account` too, so a
change of it by hand is on record. The downgrade drops them and the column, and restores the
trigger as it was.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 19:49:08.327607
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_trigger import PGTrigger

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _audit(member_account: str) -> PGTrigger:
    return PGTrigger(
        schema="public",
        signature="webhook_endpoints_audit",
        on_entity="public.webhook_endpoints",
        is_constraint=False,
        definition=(
            "AFTER INSERT\n"
            f"          OR UPDATE OF id, network_id, url, description, event_types, account,{member_account}\n"
            "                       status_reason, secret_version, previous_secret_expires_at, created_by,\n"
            "                       created_at\n"
            "          OR DELETE\n"
            "    ON public.webhook_endpoints\n"
            "    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('secret_sealed', 'previous_sealed', 'cursor',\n"
            "                                                  'attempt', 'next_attempt_at', 'failing_since')"
        ),
    )


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("member_account", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("webhook_endpoints_member_own_account_check"),
        "webhook_endpoints",
        "member_account IS NULL OR account = member_account",
    )
    op.create_foreign_key(
        op.f("webhook_endpoints_network_id_member_account_fkey"),
        "webhook_endpoints",
        "accounts",
        ["network_id", "member_account"],
        ["network_id", "code"],
    )
    op.create_foreign_key(
        op.f("webhook_endpoints_network_id_account_fkey"),
        "webhook_endpoints",
        "accounts",
        ["network_id", "account"],
        ["network_id", "code"],
    )
    op.replace_entity(_audit("\n                       member_account, status,"))


def downgrade() -> None:
    op.replace_entity(_audit(" status,"))
    op.drop_constraint(
        op.f("webhook_endpoints_network_id_account_fkey"), "webhook_endpoints", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("webhook_endpoints_network_id_member_account_fkey"),
        "webhook_endpoints",
        type_="foreignkey",
    )
    op.drop_constraint(
        op.f("webhook_endpoints_member_own_account_check"), "webhook_endpoints", type_="check"
    )
    op.drop_column("webhook_endpoints", "member_account")
