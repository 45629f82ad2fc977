"""A peer that is gone: an operator resolves what it never answered; link health; a link's
status is told to the peer.

- transfers: an 'out' transfer whose outcome is still unknown after its expiry may be resolved by
  an operator, with a reason: the hold is posted or voided (mc_finish_hold, as the protocol
  does), and the transfer is 'resolved', with `resolution` ('post' or 'void'),
  `resolution_reason` and `resolved_by`. The outbox keeps asking the peer for its word: a
  receipt that agrees makes it 'accepted' or 'refused', one that contradicts it 'disputed'
  (final, the receipt kept). New CHECKs: the statuses, `resolution` valid and present on a
  resolved or disputed transfer, and never an accepted transfer the operator voided nor a refused
  one the operator posted (`resolution_agrees`); `resolved_at` is set on every decided status.
  The outbox index covers resolved transfers too, and a new partial index finds what waits on a
  link (and what is disputed on it) for its health. mc_transfers_guard_update: disputed is final
  like accepted and refused, and a resolution, once made, never changes. transfers_audit records
  the three new columns.
- link_health: per link, the last signed answer of the peer and the failed calls since, kept out
  of the link's row (which every transfer received locks).
- links: `peer_status`, what the peer told this side of its own side (suspended or active), and
  `told_status`, the status this side last told the peer; links_audit records both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _links_audit(columns: str) -> PGTrigger:
    return PGTrigger(
        schema="public",
        signature="links_audit",
        on_entity="public.links",
        is_constraint=False,
        definition=(
            "AFTER INSERT\n"
            "          OR UPDATE OF id, network_id, peer_code, peer_url, status, account_id,\n"
            "                       settlement_account_id, rate_num, rate_den, rate_version, default_route,\n"
            f"                       agreed_at, status_reason, {columns}created_at ON public.links"
            " FOR EACH ROW EXECUTE FUNCTION mc_audit_change('in_seq', 'in_hash')"
        ),
    )


def _transfers_audit(columns: str) -> PGTrigger:
    return PGTrigger(
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
            f"                       resolved_at{columns} ON public.transfers FOR EACH ROW EXECUTE FUNCTION mc_audit_change(\n"
            "        'request_hash', 'attempts', 'next_attempt_at', 'last_error', 'receipt_signature')"
        ),
    )


_OLD_STATUSES = "status IN ('prepared', 'forwarded', 'accepted', 'refused')"
_NEW_STATUSES = "status IN ('prepared', 'forwarded', 'accepted', 'refused', 'resolved', 'disputed')"
_OLD_RESOLVED = "(status IN ('accepted', 'refused')) = (resolved_at IS NOT NULL)"
_NEW_RESOLVED = (
    "(status IN ('accepted', 'refused', 'resolved', 'disputed')) = (resolved_at IS NOT NULL)"
)
_OLD_OUTBOX = "direction = 'out' AND status = 'prepared'"
_NEW_OUTBOX = "direction = 'out' AND status IN ('prepared', 'resolved')"
_WAITING = "direction = 'out' AND status IN ('prepared', 'disputed')"
_NEW_CHECKS = {
    "transfers_resolution_valid_check": "resolution IN ('post', 'void')",
    "transfers_resolved_has_resolution_check": (
        "status NOT IN ('resolved', 'disputed') OR resolution IS NOT NULL"
    ),
    "transfers_resolution_agrees_check": (
        "NOT (status = 'accepted' AND resolution = 'void')"
        " AND NOT (status = 'refused' AND resolution = 'post')"
    ),
}


def _replace_check(name: str, condition: str) -> None:
    op.drop_constraint(op.f(name), "transfers", type_="check")
    op.create_check_constraint(op.f(name), "transfers", condition)


def _outbox_index(where: str) -> None:
    op.drop_index(op.f("transfers_outbox_idx"), table_name="transfers")
    op.create_index(
        op.f("transfers_outbox_idx"),
        "transfers",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.add_column("links", sa.Column("peer_status", sa.Text(), nullable=True))
    op.add_column("links", sa.Column("told_status", sa.Text(), nullable=True))
    op.add_column("transfers", sa.Column("resolution", sa.Text(), nullable=True))
    op.add_column("transfers", sa.Column("resolution_reason", sa.Text(), nullable=True))
    op.add_column("transfers", sa.Column("resolved_by", sa.Text(), nullable=True))
    op.create_table(
        "link_health",
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "consecutive_failures >= 0", name=op.f("link_health_failures_not_negative_check")
        ),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name=op.f("link_health_link_id_fkey")),
        sa.PrimaryKeyConstraint("link_id", name=op.f("link_health_pkey")),
    )
    public_mc_transfers_guard_update = PGFunction(
        schema="public",
        signature="mc_transfers_guard_update()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF OLD.status IN ('accepted', 'refused', 'disputed')\n"
            "       OR (NEW.id, NEW.network_id, NEW.transfer_id, NEW.link_id, NEW.direction, NEW.kind,\n"
            "           NEW.payer_address, NEW.payee_address, NEW.amount_sent, NEW.amount_received,\n"
            "           NEW.rate_num, NEW.rate_den, NEW.rate_version, NEW.reference, NEW.expires_at,\n"
            "           NEW.via, NEW.request_hash, NEW.created_at)\n"
            "          IS DISTINCT FROM\n"
            "          (OLD.id, OLD.network_id, OLD.transfer_id, OLD.link_id, OLD.direction, OLD.kind,\n"
            "           OLD.payer_address, OLD.payee_address, OLD.amount_sent, OLD.amount_received,\n"
            "           OLD.rate_num, OLD.rate_den, OLD.rate_version, OLD.reference, OLD.expires_at,\n"
            "           OLD.via, OLD.request_hash, OLD.created_at)\n"
            "       OR (OLD.resolution IS NOT NULL\n"
            "           AND (NEW.resolution, NEW.resolution_reason, NEW.resolved_by)\n"
            "               IS DISTINCT FROM (OLD.resolution, OLD.resolution_reason, OLD.resolved_by)) THEN\n"
            "        RAISE EXCEPTION 'transfer % is final, or the change touches what it is', OLD.transfer_id\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'transfers',\n"
            "                  CONSTRAINT = 'transfers_final';\n"
            "    END IF;\n"
            "    RETURN NEW;\n"
            "END $$"
        ),
    )
    op.replace_entity(public_mc_transfers_guard_update)

    op.create_check_constraint(
        op.f("links_told_status_valid_check"),
        "links",
        "peer_status IN ('active', 'suspended') AND told_status IN ('active', 'suspended')",
    )
    _replace_check("transfers_status_valid_check", _NEW_STATUSES)
    _replace_check("transfers_resolved_check", _NEW_RESOLVED)
    for name, condition in _NEW_CHECKS.items():
        op.create_check_constraint(op.f(name), "transfers", condition)
    _outbox_index(_NEW_OUTBOX)
    op.create_index(
        op.f("transfers_waiting_idx"),
        "transfers",
        ["link_id", "created_at"],
        unique=False,
        postgresql_where=sa.text(_WAITING),
    )
    op.replace_entity(_links_audit("peer_status, told_status, "))
    op.replace_entity(_transfers_audit(", resolution, resolution_reason, resolved_by"))


def downgrade() -> None:
    op.replace_entity(_transfers_audit(""))
    op.replace_entity(_links_audit(""))
    op.drop_index(op.f("transfers_waiting_idx"), table_name="transfers")
    _outbox_index(_OLD_OUTBOX)
    for name in _NEW_CHECKS:
        op.drop_constraint(op.f(name), "transfers", type_="check")
    _replace_check("transfers_resolved_check", _OLD_RESOLVED)
    _replace_check("transfers_status_valid_check", _OLD_STATUSES)
    op.drop_constraint(op.f("links_told_status_valid_check"), "links", type_="check")
    op.drop_column("transfers", "resolved_by")
    op.drop_column("transfers", "resolution_reason")
    op.drop_column("transfers", "resolution")
    op.drop_column("links", "told_status")
    op.drop_column("links", "peer_status")
    op.drop_table("link_health")
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
            "END $function$"
        ),
    )
    op.replace_entity(public_mc_transfers_guard_update)
