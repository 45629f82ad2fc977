"""Routes beyond one hub: a link carries a route table, and a transfer its path.

A link can now name the networks reached through its peer: the new table `link_routes`
(link_id, destination), set by an operator (`PATCH …/links/{peer}` with `routes`). A destination
is routed by at most one link of a network (unique `(network_id, destination)`), so routing is
never ambiguous, and a route belongs to a link of its own network: a composite foreign key to
`links (network_id, id)`, for which `links` gains that unique key. Routing tries a direct link,
then the link whose table names the destination, then the default route; so any two networks
of a tree pay each other both ways, not only up toward the default route.

A transfer a hub sends on names the hubs it went through, in the new column `transfers.via`
(text[], empty for a transfer from its origin, which is every transfer written before): a
network refuses one that visited it already, or whose next hop it visited (route_loop), so a
route never visits a network twice. `via` is part of what a transfer is: the guard
`mc_transfers_guard_update` now refuses a change of it (federation/mc_transfers_guard_update.sql),
and the audit trigger `transfers_audit` records it (audit/transfers_audit.sql).

Every change of a route table is on record: `link_routes_audit` (insert, update, delete) and
`link_routes_no_truncate`, new files in audit/. The downgrade drops the table and the column and
restores the texts of the function and the trigger as they were.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 16:48:14.602098
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    public_mc_transfers_guard_update = PGFunction(
        schema="public",
        signature="mc_transfers_guard_update()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.status IN ('accepted', 'refused')\n"
            "       OR (NEW.id, NEW.network_id, NEW.transfer_id, NEW.link_id, NEW.direction, NEW.kind,\n"
            "           NEW.payer_address, NEW.payee_address, NEW.amount_sent, NEW.amount_received,\n"
            "           NEW.rate_num, NEW.rate_den, NEW.rate_version, NEW.reference, NEW.expires_at,\n"
            "           NEW.via, NEW.request_hash, NEW.created_at)\n"
            "          IS DISTINCT FROM\n"
            "          (OLD.id, OLD.network_id, OLD.transfer_id, OLD.link_id, OLD.direction, OLD.kind,\n"
            "           OLD.payer_address, OLD.payee_address, OLD.amount_sent, OLD.amount_received,\n"
            "           OLD.rate_num, OLD.rate_den, OLD.rate_version, OLD.reference, OLD.expires_at,\n"
            "           OLD.via, OLD.request_hash, OLD.created_at) THEN\n"
            "        RAISE EXCEPTION 'transfer % is final, or the change touches what it is', OLD.transfer_id\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'transfers',\n"
            "                  CONSTRAINT = 'transfers_final';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    )
    op.replace_entity(public_mc_transfers_guard_update)

    op.create_unique_constraint(op.f("links_network_id_id_key"), "links", ["network_id", "id"])
    op.create_table(
        "link_routes",
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "destination ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'",
            name=op.f("link_routes_destination_format_check"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id", "link_id"],
            ["links.network_id", "links.id"],
            name=op.f("link_routes_network_id_link_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("link_id", "destination", name=op.f("link_routes_pkey")),
        sa.UniqueConstraint(
            "network_id", "destination", name=op.f("link_routes_network_id_destination_key")
        ),
    )
    op.add_column(
        "transfers",
        sa.Column(
            "via", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
    )

    public_link_routes_link_routes_audit = PGTrigger(
        schema="public",
        signature="link_routes_audit",
        on_entity="public.link_routes",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE OR DELETE ON public.link_routes FOR EACH ROW EXECUTE FUNCTION mc_audit_change()"
        ),
    )
    op.create_entity(public_link_routes_link_routes_audit)

    public_link_routes_link_routes_no_truncate = PGTrigger(
        schema="public",
        signature="link_routes_no_truncate",
        on_entity="public.link_routes",
        is_constraint=False,
        definition=(
            "BEFORE TRUNCATE ON public.link_routes FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_truncate()"
        ),
    )
    op.create_entity(public_link_routes_link_routes_no_truncate)

    public_transfers_transfers_audit = PGTrigger(
        schema="public",
        signature="transfers_audit",
        on_entity="public.transfers",
        is_constraint=False,
        definition=(
            "AFTER INSERT\n"
            "          OR UPDATE OF id, network_id, transfer_id, link_id, direction, kind, status, trade_id,\n"
            "                       payer_address, payee_address, amount_sent, amount_received, rate_num,\n"
            "                       rate_den, rate_version, reference, via, description, expires_at,\n"
            "                       refusal_code, refusal_detail, seq, chain_hash, receipt, created_at,\n"
            "                       resolved_at ON public.transfers FOR EACH ROW EXECUTE FUNCTION mc_audit_change(\n"
            "        'request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature')"
        ),
    )
    op.replace_entity(public_transfers_transfers_audit)


def downgrade() -> None:
    public_transfers_transfers_audit = PGTrigger(
        schema="public",
        signature="transfers_audit",
        on_entity="public.transfers",
        is_constraint=False,
        definition=(
            "AFTER INSERT OR UPDATE OF id, network_id, transfer_id, link_id, direction, kind, status, trade_id, payer_address, payee_address, amount_sent, amount_received, rate_num, rate_den, rate_version, reference, description, expires_at, refusal_code, refusal_detail, seq, chain_hash, receipt, created_at, resolved_at ON public.transfers FOR EACH ROW EXECUTE FUNCTION mc_audit_change('request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature')"
        ),
    )
    op.replace_entity(public_transfers_transfers_audit)

    public_link_routes_link_routes_no_truncate = PGTrigger(
        schema="public",
        signature="link_routes_no_truncate",
        on_entity="public.link_routes",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_link_routes_link_routes_no_truncate)

    public_link_routes_link_routes_audit = PGTrigger(
        schema="public",
        signature="link_routes_audit",
        on_entity="public.link_routes",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_link_routes_link_routes_audit)

    op.drop_column("transfers", "via")
    op.drop_table("link_routes")
    op.drop_constraint(op.f("links_network_id_id_key"), "links", type_="unique")
    public_mc_transfers_guard_update = PGFunction(
        schema="public",
        signature="mc_transfers_guard_update()",
        definition=(
            "returns trigger\n"
            " LANGUAGE plpgsql\n"
            "AS $function$\n"
            "BEGIN\n"
            "    IF OLD.status IN ('accepted', 'refused')\n"
            "       OR (NEW.id, NEW.network_id, NEW.transfer_id, NEW.link_id, NEW.direction, NEW.kind,\n"
            "           NEW.payer_address, NEW.payee_address, NEW.amount_sent, NEW.amount_received,\n"
            "           NEW.rate_num, NEW.rate_den, NEW.rate_version, NEW.reference, NEW.expires_at,\n"
            "           NEW.request_hash, NEW.created_at)\n"
            "          IS DISTINCT FROM\n"
            "          (OLD.id, OLD.network_id, OLD.transfer_id, OLD.link_id, OLD.direction, OLD.kind,\n"
            "           OLD.payer_address, OLD.payee_address, OLD.amount_sent, OLD.amount_received,\n"
            "           OLD.rate_num, OLD.rate_den, OLD.rate_version, OLD.reference, OLD.expires_at,\n"
            "           OLD.request_hash, OLD.created_at) THEN\n"
            "        RAISE EXCEPTION 'transfer % is final, or the change touches what it is', OLD.transfer_id\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'transfers',\n"
            "                  CONSTRAINT = 'transfers_final';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $function$"
        ),
    )
    op.replace_entity(public_mc_transfers_guard_update)
