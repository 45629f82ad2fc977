"""Keys retire on time, and a descriptor may be private (issue 16, item 6).

A rotated signing key used to stay trusted by every peer until each peer's operator revoked it
by hand. A rotation now says when the old key retires (after a grace period, or at once when it
is compromised), and the peer records it:

- `link_peer_keys.expires_at`: when this side stops accepting the peer's key (null: until the
  peer rotates it away). Every lookup of a trusted key filters on it. The new trigger
  `link_peer_keys_guard` (function `mc_peer_keys_guard`, migrations/sql/federation/) keeps a
  peer's key on record for good (no DELETE), never changes what it is (link, key id, public
  key, created_at), and lets its expiry only come closer: once retired, a key is never trusted
  again, whatever a later notice or an operator's registration says.
- `node_keys.expires_at`: on this side, when the rotation that retired a key told peers to stop
  accepting it; set only on a retired key (CHECK `node_keys_expires_when_retired_check`).

A network also chooses whether its federation descriptor is public:

- `networks.descriptor_public` (default true, what every network had): when false, the public
  descriptor answers 404 as an unknown network does; operators read it through the operator API.

Existing rows keep their meaning: no key has an expiry, every descriptor stays public.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 16:49:20.252285
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "link_peer_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "networks",
        sa.Column(
            "descriptor_public", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
    )
    op.add_column("node_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("node_keys_expires_when_retired_check"),
        "node_keys",
        "expires_at IS NULL OR status = 'retired'",
    )

    public_mc_peer_keys_guard = PGFunction(
        schema="public",
        signature="mc_peer_keys_guard()",
        definition=(
            "returns trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF TG_OP = 'DELETE'\n"
            "       OR (NEW.link_id, NEW.key_id, NEW.public_key, NEW.created_at)\n"
            "          IS DISTINCT FROM (OLD.link_id, OLD.key_id, OLD.public_key, OLD.created_at)\n"
            "       OR (OLD.expires_at IS NOT NULL\n"
            "           AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at)) THEN\n"
            "        RAISE EXCEPTION 'key % of a peer is on record for good, and its expiry only comes closer',\n"
            "            OLD.key_id\n"
            "            USING ERRCODE = 'restrict_violation', TABLE = 'link_peer_keys',\n"
            "                  CONSTRAINT = 'link_peer_keys_guard';\n"
            "    END IF;\n"
            "    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;\n"
            "END $$"
        ),
    )
    op.create_entity(public_mc_peer_keys_guard)

    public_link_peer_keys_link_peer_keys_guard = PGTrigger(
        schema="public",
        signature="link_peer_keys_guard",
        on_entity="public.link_peer_keys",
        is_constraint=False,
        definition=(
            "BEFORE UPDATE OR DELETE ON public.link_peer_keys FOR EACH ROW EXECUTE FUNCTION mc_peer_keys_guard()"
        ),
    )
    op.create_entity(public_link_peer_keys_link_peer_keys_guard)


def downgrade() -> None:
    public_link_peer_keys_link_peer_keys_guard = PGTrigger(
        schema="public",
        signature="link_peer_keys_guard",
        on_entity="public.link_peer_keys",
        is_constraint=False,
        definition="",
    )
    op.drop_entity(public_link_peer_keys_link_peer_keys_guard)

    public_mc_peer_keys_guard = PGFunction(
        schema="public",
        signature="mc_peer_keys_guard()",
        definition="",
    )
    op.drop_entity(public_mc_peer_keys_guard)

    op.drop_constraint(op.f("node_keys_expires_when_retired_check"), "node_keys")
    op.drop_column("node_keys", "expires_at")
    op.drop_column("networks", "descriptor_public")
    op.drop_column("link_peer_keys", "expires_at")
