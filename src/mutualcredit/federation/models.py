"""Federation: node keys, links to other networks, transfers across them, and their records.

A link between networks A and B is booked in each ledger as an account of kind `link`
(`link.<peer>`) whose limits are the trust caps: its credit limit is how much the peer may owe
this network, its balance_max how much this network lets itself owe the peer. A transfer is one
hop of a cross-network trade: `direction` 'out' at the sender, 'in' at the receiver, with the
same `transfer_id` on both sides (and both rows at a hub, which receives and sends it on).

Invariants kept by PostgreSQL (migrations/sql/federation/):
- a transfer row changes only while it is in flight (or resolved by an operator and waiting
  for the peer's word), and once final (accepted, refused or disputed) it never changes again;
  an operator's resolution, once made, never changes, and an accepted transfer was never voided
  by one nor a refused one posted (CHECK); no transfer, checkpoint or settlement is ever
  deleted (triggers);
- a transfer id is unique per network and direction (unique index), so a duplicate delivery can
  never book twice; an accepted transfer's place in its link's chain (seq) is unique;
- one active signing key per network (partial unique index); exchange rates are exact positive
  integer fractions (CHECK), never floats;
- a destination network is in the route table of at most one link of a network (unique), and
  a route belongs to a link of its own network (composite foreign key): routing is unambiguous.
- a peer's key is never deleted and never changes what it is; once it has an expiry (its owner
  rotated it) the expiry only comes closer, so a retired key is never trusted again (trigger
  `link_peer_keys_guard`), and a key is trusted only before its expiry (every lookup filters).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import conv

from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.db import Base


class NodeKey(Base):
    """A network's Ed25519 signing key. The private half is sealed (AES-256-GCM under the
    deployment's secret key) and never leaves the service; retired keys stay published so
    that peers can still check what they signed. `expires_at` is when the rotation that
    retired the key told peers to stop accepting it (at once, for a compromised key)."""

    __tablename__ = "node_keys"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'retired')", name="status_valid"),
        CheckConstraint("expires_at IS NULL OR status = 'retired'", name="expires_when_retired"),
        CheckConstraint("length(public_key) = 32", name="public_key_length"),
        UniqueConstraint("key_id"),
        Index(
            conv("node_keys_one_active_per_network_idx"),
            "network_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    key_id: Mapped[str] = mapped_column(Text)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Link(Base):
    """This network's side of a link to a peer network.

    `rate_num / rate_den`: one minor unit here is worth rate_num/rate_den minor units of the
    peer (the peer's link holds the inverse). `rate_version` goes up with every rate this side
    proposes, and an agreement sets both sides to the larger of their two versions; a transfer
    names the version it used, and the receiver refuses another. `agreed_at` is set when both
    sides have confirmed the same rate to each other (signed), and cleared by a new rate: no
    value crosses before."""

    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint("status IN ('proposed', 'active', 'suspended')", name="status_valid"),
        CheckConstraint(
            "peer_status IN ('active', 'suspended') AND told_status IN ('active', 'suspended')",
            name="told_status_valid",
        ),
        CheckConstraint(
            f"rate_num BETWEEN 1 AND {MAX_AMOUNT} AND rate_den BETWEEN 1 AND {MAX_AMOUNT}",
            name="rate_positive",
        ),
        CheckConstraint("rate_version >= 1", name="rate_version_positive"),
        CheckConstraint(
            "peer_code ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'", name="peer_code_format"
        ),
        CheckConstraint("status <> 'active' OR agreed_at IS NOT NULL", name="agreed_to_run"),
        UniqueConstraint("network_id", "peer_code"),
        UniqueConstraint("account_id"),
        # The key a link's routes refer to, so that a route is in its link's network.
        UniqueConstraint("network_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    peer_code: Mapped[str] = mapped_column(Text)
    peer_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="proposed")
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    settlement_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    rate_num: Mapped[int] = mapped_column(BigInteger)
    rate_den: Mapped[int] = mapped_column(BigInteger)
    rate_version: Mapped[int] = mapped_column(Integer, server_default="1")
    default_route: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The receiving side's chain of accepted inbound transfers: last seq and running hash.
    in_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    in_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    agreed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # What the peer told this side of its own side's status (suspended or active), signed; and
    # the status this side last told the peer (the outbox loop tells it until the two match).
    peer_status: Mapped[str | None] = mapped_column(Text)
    told_status: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class LinkRoute(Base):
    """A network this network reaches through a link (not the link's peer itself): the link's
    route table, set by its operator. A destination is routed by at most one link of a network
    (unique), so a route is never ambiguous. Routing (repository.route) tries a direct link to
    the destination first, then the link whose table names it, then the default route."""

    __tablename__ = "link_routes"
    __table_args__ = (
        ForeignKeyConstraint(["network_id", "link_id"], ["links.network_id", "links.id"]),
        UniqueConstraint("network_id", "destination"),
        CheckConstraint(
            "destination ~ '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$'", name="destination_format"
        ),
    )

    link_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    destination: Mapped[str] = mapped_column(Text, primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class LinkHealth(Base):
    """How calls to a link's peer have gone: the last signed answer, and how many calls in a
    row since got none. Kept apart from the link's row, which every transfer received locks
    (chains.append), and written at most once a second per link while calls succeed."""

    __tablename__ = "link_health"
    __table_args__ = (CheckConstraint("consecutive_failures >= 0", name="failures_not_negative"),)

    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"), primary_key=True)
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PeerKey(Base):
    """A public key of the peer of a link, registered by this side's operator or announced by the
    peer in a rotation (several during a rotation's grace period). `expires_at` is set when the
    peer rotates the key away: a request signed with it is refused from then on (at once when
    the peer said the key was compromised). Revoking is the operator's own word, at once."""

    __tablename__ = "link_peer_keys"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'revoked')", name="status_valid"),
        CheckConstraint("length(public_key) = 32", name="public_key_length"),
    )

    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(Text, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Transfer(Base):
    """One hop of a cross-network trade, as this network sees it.

    'out' rows are the outbox: `next_attempt_at` drives delivery (and status queries) until the
    peer's signed receipt is final. 'in' rows record the decision this network made (or, at a
    hub, that it is waiting for the next hop: status 'forwarded'). Accepted, refused and
    disputed are final (trigger `transfers_final`).

    Sending (direction 'out', at the origin and at a hub; outbound.py, resolve.py):

        queued with its hold    receipt: accepted (the hold is posted, the chain hash checked)
        ───────────────────► prepared ──────────────────────────────────────────► accepted
                              │  ▲
                              │  └─ no answer, an unsigned one, a 5xx, 'pending', a receipt
                              │     that does not match: kept, delivered again with backoff
                              ├───── receipt: refused, or a signed 4xx problem (a definite
                              │      refusal): the hold is voided ─────────────► refused
                              │
                              └── an operator resolves it, after its expiry, with a reason:
                                  the hold is posted or voided (`resolution`) ─► resolved
                                                                                   │
          the outbox still asks the peer, at the longest backoff, for its word:    │
              it says what the operator did (accepted after a post, refused after  │
              a void) ──────────────────────────────────────────► accepted / refused
              it says the opposite: kept with its receipt, no value moved ► disputed

    Receiving (direction 'in', at the destination and at a hub; inbound.py), decided at the
    first delivery; every later one is answered from the row:

        first delivery ──┬──► accepted    booked here, appended to the link's chain
                         ├──► refused     expired, link not active, another rate, amounts
                         │                that do not convert, no route, a route loop, too
                         │                many hops, a ledger refusal
                         └──► forwarded   a hub: held link-in -> link-out and sent on; answered
                                  │       'pending' until the next network decides
                                  └─────► accepted (in the chain) or refused, as the next
                                          network's receipt says (outbound.apply_receipt), or
                                          as the hub's operator resolves its outbound row
    """

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction_valid"),
        CheckConstraint("kind IN ('federation', 'settlement')", name="kind_valid"),
        CheckConstraint(
            "status IN ('prepared', 'forwarded', 'accepted', 'refused', 'resolved', 'disputed')",
            name="status_valid",
        ),
        CheckConstraint("resolution IN ('post', 'void')", name="resolution_valid"),
        CheckConstraint(
            "status NOT IN ('resolved', 'disputed') OR resolution IS NOT NULL",
            name="resolved_has_resolution",
        ),
        CheckConstraint(
            "NOT (status = 'accepted' AND resolution = 'void')"
            " AND NOT (status = 'refused' AND resolution = 'post')",
            name="resolution_agrees",
        ),
        # Only a settlement in full from a side whose link balance is zero sends nothing
        # (settlements.py): every other transfer sends at least one minor unit.
        CheckConstraint(
            f"(amount_sent BETWEEN 1 AND {MAX_AMOUNT} OR (kind = 'settlement' AND amount_sent = 0))"
            f" AND amount_received BETWEEN 0 AND {MAX_AMOUNT}",
            name="amounts_range",
        ),
        CheckConstraint("rate_num >= 1 AND rate_den >= 1", name="rate_positive"),
        CheckConstraint(
            "(status = 'accepted') = (seq IS NOT NULL AND chain_hash IS NOT NULL)",
            name="accepted_in_chain",
        ),
        CheckConstraint(
            "(status IN ('accepted', 'refused', 'resolved', 'disputed'))"
            " = (resolved_at IS NOT NULL)",
            name="resolved",
        ),
        UniqueConstraint("network_id", "transfer_id", "direction"),
        UniqueConstraint("link_id", "direction", "seq"),
        Index(
            conv("transfers_outbox_idx"),
            "next_attempt_at",
            postgresql_where=text("direction = 'out' AND status IN ('prepared', 'resolved')"),
        ),
        Index(conv("transfers_trade_id_idx"), "trade_id"),
        # What waits on a link, and what is disputed on it: its health, read every second.
        Index(
            conv("transfers_waiting_idx"),
            "link_id",
            "created_at",
            postgresql_where=text("direction = 'out' AND status IN ('prepared', 'disputed')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"))
    transfer_id: Mapped[uuid.UUID] = mapped_column()
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"))
    direction: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    trade_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("trades.id"))
    payer_address: Mapped[str] = mapped_column(Text)
    payee_address: Mapped[str] = mapped_column(Text)
    amount_sent: Mapped[int] = mapped_column(BigInteger)
    amount_received: Mapped[int] = mapped_column(BigInteger)
    rate_num: Mapped[int] = mapped_column(BigInteger)
    rate_den: Mapped[int] = mapped_column(BigInteger)
    rate_version: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(Text)
    # The hubs the transfer went through before this hop, in order (protocol.message's `via`).
    via: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    refusal_code: Mapped[str | None] = mapped_column(Text)
    refusal_detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    chain_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    receipt_signature: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An operator's resolution of a transfer whose outcome was unknown past its expiry: what was
    # done with the hold ('post' or 'void'), why, and who (the audit log has the record too).
    resolution: Mapped[str | None] = mapped_column(Text)
    resolution_reason: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Text)


class SeenNonce(Base):
    """Nonces of signed requests within the freshness window: a replay is refused."""

    __tablename__ = "federation_nonces"

    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(Text, primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


class Checkpoint(Base):
    """A point both sides of a link agreed on and signed: chain positions, hashes, balances."""

    __tablename__ = "link_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    signatures: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class Settlement(Base):
    """An operator's record of a settlement agreed with the peer (paid outside the ledger).

    The side that is owed executes it as a transfer of kind 'settlement' once it records it;
    the other side accepts that transfer only if it recorded the same reference and the amount
    that arrives (settlements.py, inbound.py). A settlement of a side's whole link balance is
    in full: both balances end at exactly zero, the rounding remainder included.

        the owing side:  recorded ──► agreed ──the peer's transfer is booked here──► executed
                                        │  ▲
                                 cancel │  │ recorded again (any amount)
                                        ▼  │
                                      cancelled

        the owed side:   recorded ──► sent ──receipt: accepted──► executed
                                  (at once) │
                                            └─receipt: refused──► refused ──cancel──► cancelled
                         refused or cancelled ──recorded again (any amount)──► sent (a new
                                                                                transfer)

    A mistake never uses up a reference: a refused or cancelled settlement is recorded again
    under the same reference, as a new transfer; the refused one stays in the link's history.
    Sent and executed are never cancelled.
    """

    __tablename__ = "settlements"
    __table_args__ = (
        # Zero only for a settlement in full from a side whose link balance is zero.
        CheckConstraint(f"amount BETWEEN 0 AND {MAX_AMOUNT}", name="amount_range"),
        CheckConstraint(
            "status IN ('agreed', 'sent', 'executed', 'refused', 'cancelled')",
            name="status_valid",
        ),
        CheckConstraint("(status = 'cancelled') = (status_reason IS NOT NULL)", name="cancelled"),
        UniqueConstraint("link_id", "reference"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("links.id"))
    reference: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)
    # Why the operator cancelled it (set exactly while it is cancelled).
    status_reason: Mapped[str | None] = mapped_column(Text)
    transfer_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
