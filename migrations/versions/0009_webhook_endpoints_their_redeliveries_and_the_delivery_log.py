"""Webhook endpoints, their redeliveries and the delivery log.

`webhook_endpoints`: a URL an operator registered for a network, the event types it wants (NULL:
all) and optionally one account; its signing secret sealed (and, after a rotation, the previous
one with the moment it stops signing); `status` enabled or disabled (CHECK
webhook_endpoints_status_valid_check) with a reason; and its delivery state: the cursor over the
network's events (the seq of the last event it is done with), the attempt at the next one, when
that is due (also the lease a worker takes before calling out), and since when it has been
failing. `webhook_redelivery_requests`: an operator's request to send one event again, retried like any
delivery until done. `webhook_attempts`: the delivery log, one row per attempt (status code,
latency, error, outcome).

Audited by new triggers (files in audit/): `webhook_endpoints_audit` records every change an
operator makes, a disabling for failure, and a deletion by hand, but not the secrets nor the
delivery bookkeeping (the columns it names leave them out, so a delivery never runs it);
`webhook_redelivery_requests_audit` records each request, not its progress; TRUNCATE of either is
refused (`*_no_truncate`). The attempts are a log of their own, not audited. The downgrade
drops the triggers and the tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 17:48:52.602625
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_trigger import PGTrigger
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


WEBHOOK_ENDPOINTS_AUDIT = PGTrigger(
    schema="public",
    signature="webhook_endpoints_audit",
    on_entity="public.webhook_endpoints",
    is_constraint=False,
    definition=(
        "AFTER INSERT\n"
        "          OR UPDATE OF id, network_id, url, description, event_types, account, status,\n"
        "                       status_reason, secret_version, previous_secret_expires_at, created_by,\n"
        "                       created_at\n"
        "          OR DELETE\n"
        "    ON public.webhook_endpoints\n"
        "    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('secret_sealed', 'previous_sealed', 'cursor',\n"
        "                                                  'attempt', 'next_attempt_at', 'failing_since')"
    ),
)

WEBHOOK_REDELIVERY_REQUESTS_AUDIT = PGTrigger(
    schema="public",
    signature="webhook_redelivery_requests_audit",
    on_entity="public.webhook_redelivery_requests",
    is_constraint=False,
    definition=(
        "AFTER INSERT\n"
        "          OR UPDATE OF id, network_id, endpoint_id, seq, requested_by, created_at\n"
        "          OR DELETE\n"
        "    ON public.webhook_redelivery_requests\n"
        "    FOR EACH ROW EXECUTE FUNCTION mc_audit_change('attempt', 'next_attempt_at', 'done_at')"
    ),
)

WEBHOOK_ENDPOINTS_NO_TRUNCATE = PGTrigger(
    schema="public",
    signature="webhook_endpoints_no_truncate",
    on_entity="public.webhook_endpoints",
    is_constraint=False,
    definition=(
        "BEFORE TRUNCATE ON public.webhook_endpoints\n"
        "    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate()"
    ),
)

WEBHOOK_REDELIVERY_REQUESTS_NO_TRUNCATE = PGTrigger(
    schema="public",
    signature="webhook_redelivery_requests_no_truncate",
    on_entity="public.webhook_redelivery_requests",
    is_constraint=False,
    definition=(
        "BEFORE TRUNCATE ON public.webhook_redelivery_requests\n"
        "    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate()"
    ),
)

TRIGGERS = (
    WEBHOOK_ENDPOINTS_AUDIT,
    WEBHOOK_REDELIVERY_REQUESTS_AUDIT,
    WEBHOOK_ENDPOINTS_NO_TRUNCATE,
    WEBHOOK_REDELIVERY_REQUESTS_NO_TRUNCATE,
)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("account", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="enabled", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("previous_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("secret_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('enabled', 'disabled')", name=op.f("webhook_endpoints_status_valid_check")
        ),
        sa.CheckConstraint("attempt >= 0", name=op.f("webhook_endpoints_attempt_valid_check")),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("webhook_endpoints_network_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_endpoints_pkey")),
    )
    op.create_index(
        op.f("webhook_endpoints_network_id_created_at_id_idx"),
        "webhook_endpoints",
        ["network_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("webhook_endpoints_next_attempt_at_idx"),
        "webhook_endpoints",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'enabled'"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("redelivery", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "outcome IN ('delivered', 'retrying', 'failed')",
            name=op.f("webhook_attempts_outcome_valid_check"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("webhook_attempts_endpoint_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_attempts_pkey")),
    )
    op.create_index(
        op.f("webhook_attempts_endpoint_id_id_idx"),
        "webhook_attempts",
        ["endpoint_id", "id"],
        unique=False,
    )
    op.create_table(
        "webhook_redelivery_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("webhook_redelivery_requests_endpoint_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("webhook_redelivery_requests_network_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_redelivery_requests_pkey")),
    )
    op.create_index(
        op.f("webhook_redelivery_requests_next_attempt_at_idx"),
        "webhook_redelivery_requests",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("done_at IS NULL"),
    )
    for trigger in TRIGGERS:
        op.create_entity(trigger)


def downgrade() -> None:
    for trigger in reversed(TRIGGERS):
        op.drop_entity(trigger)
    op.drop_index(
        op.f("webhook_redelivery_requests_next_attempt_at_idx"),
        table_name="webhook_redelivery_requests",
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.drop_table("webhook_redelivery_requests")
    op.drop_index(op.f("webhook_attempts_endpoint_id_id_idx"), table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index(
        op.f("webhook_endpoints_next_attempt_at_idx"),
        table_name="webhook_endpoints",
        postgresql_where=sa.text("status = 'enabled'"),
    )
    op.drop_index(
        op.f("webhook_endpoints_network_id_created_at_id_idx"), table_name="webhook_endpoints"
    )
    op.drop_table("webhook_endpoints")
