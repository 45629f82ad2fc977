import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from mutualcredit.config import FEDERATION_MAX_HOPS
from mutualcredit.schemas import Amount, Flag, InputModel, OutputModel
from mutualcredit.trades.schemas import RateView

PeerCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$", description="The peer's network code."
    ),
]
Reason = Annotated[str, Field(min_length=1, max_length=500)]

# The most links one cross-network trade crosses, origin to destination: a hub refuses to send
# a transfer on beyond it (too_many_hops; a deployment may set fewer). With the default expiry
# (60 s) and hop margin (5 s), the hubs of the longest route take 35 s of the expiry (7 hubs).
MAX_HOPS = FEDERATION_MAX_HOPS
# The most destinations one link's route table holds.
MAX_ROUTES = 1000
# How long peers may keep accepting a rotated key: at most a week, a day unless the operator says.
GRACE_MAX_SECONDS = 7 * 24 * 3600
GRACE_DEFAULT_SECONDS = 24 * 3600


class Rate(InputModel):
    """One minor unit of this network is worth num/den minor units of the peer's."""

    num: Annotated[int, Field(ge=1, le=2**53 - 1, strict=True)]
    den: Annotated[int, Field(ge=1, le=2**53 - 1, strict=True)]


class PeerKeyCreate(InputModel):
    key_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
    public_key: Annotated[
        str,
        Field(pattern=r"^[A-Za-z0-9_-]{43}$", description="Raw Ed25519 public key, base64url."),
    ]


class KeyRotation(InputModel):
    """An operator's rotation of the network's signing key."""

    grace_seconds: Annotated[int, Field(ge=0, le=GRACE_MAX_SECONDS, strict=True)] = Field(
        default=GRACE_DEFAULT_SECONDS,
        description="How long linked peers keep accepting the old key (at most a week).",
    )
    compromised: Flag = Field(
        default=False,
        description="The old key may be known to someone else: peers refuse it at once, "
        "whatever grace_seconds says.",
    )
    reason: Reason | None = Field(default=None, description="Kept in the audit log.")


class KeyNotice(PeerKeyCreate):
    """A peer's rotation notice, in a request signed with its old key: the new key, when the old
    one retires (unix seconds; at once when compromised), and the new key's signature over
    crypto.key_base (it holds the new key)."""

    retire_at: Annotated[int, Field(ge=0, le=2**53 - 1, strict=True)]
    compromised: Flag
    proof: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")]


class LinkCreate(InputModel):
    peer: PeerCode
    peer_url: AnyHttpUrl = Field(description="Base URL of the peer's deployment.")
    peer_key: PeerKeyCreate = Field(description="The peer's key, from its descriptor.")
    rate: Rate
    credit_limit: Amount = Field(description="Trust cap: how much the peer may owe this network.")
    balance_max: Amount | None = Field(
        description="Trust cap: how much this network may owe the peer (null: no cap)."
    )
    default_route: Flag = Field(
        default=False,
        description="Send trades for networks without a direct link through this peer (a hub).",
    )
    reason: Reason | None = None


class LinkStatusChange(InputModel):
    reason: Reason


class LinkStatusNotice(InputModel):
    """Node to node: the calling network tells this one its own side's status of the link."""

    status: Literal["active", "suspended"]
    reason: str | None = Field(default=None, max_length=500)


class TransferResolve(InputModel):
    """An operator's resolution of a transfer whose outcome is unknown past its expiry."""

    outcome: Literal["void", "post"] = Field(
        description="void: release the hold (the peer is taken not to have booked it); post: "
        "book it (the operator knows the peer did)."
    )
    reason: Reason = Field(description="Why, kept in the audit log with the transfer.")


class LinkHealthView(OutputModel):
    last_contact_at: datetime | None = Field(
        description="When the peer last gave a signed answer to a call of this side."
    )
    consecutive_failures: int = Field(
        description="Calls to the peer in a row since then that got no signed answer."
    )
    last_failure_at: datetime | None
    transfers_waiting: int = Field(
        description="Transfers sent over the link whose outcome this side does not know yet."
    )
    oldest_waiting_at: datetime | None = Field(description="When the oldest of them was queued.")
    oldest_waiting_seconds: float | None
    transfers_disputed: int = Field(
        description="Transfers an operator resolved that the peer later decided otherwise."
    )


class LinkUpdate(InputModel):
    """A change to a link. A new rate is a proposal: the link stops carrying value (status
    proposed, or suspended if it was) until it is agreed again with the peer, which must hold
    the inverse. The peer URL and routing change at once (the peer's key still authenticates
    every answer, so a wrong URL fails closed)."""

    peer_url: AnyHttpUrl | None = Field(default=None, description="New base URL of the peer.")
    rate: Rate | None = Field(default=None, description="A new exchange rate to agree.")
    default_route: Flag | None = None
    routes: list[PeerCode] | None = Field(
        default=None,
        max_length=MAX_ROUTES,
        description="The link's route table, replaced whole: the networks reached through this"
        " peer (not the peer itself, nor this network; each routed by one link of this network"
        " at most). [] empties it.",
    )
    reason: Reason


class LinkView(OutputModel):
    peer: str
    peer_url: str
    status: str = Field(description="proposed (not yet agreed by both), active, or suspended.")
    status_reason: str | None
    account: str = Field(description="The link account: the peer network in this ledger.")
    settlement_account: str
    rate: RateView
    credit_limit: int
    balance_max: int | None
    balance: int = Field(description="Negative: the peer owes this network. Positive: the reverse.")
    pending_debits: int
    pending_credits: int
    default_route: bool
    routes: list[str] = Field(description="The networks reached through this peer, by code.")
    peer_keys: list[dict[str, Any]]
    agreed_at: datetime | None
    peer_status: str | None = Field(
        description="The peer's own side of the link, as it told this one (suspended or "
        "active); null until it tells. While suspended there, this side sends nothing."
    )
    peer_told: bool = Field(
        description="Whether the peer has acknowledged this side's suspension (or the resume "
        "after one); the outbox loop tells it until it has."
    )
    health: LinkHealthView
    created_at: datetime


class CheckpointView(OutputModel):
    id: int
    payload: dict[str, Any]
    signatures: dict[str, Any]
    created_at: datetime


class SettlementCreate(InputModel):
    reference: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The same reference on both sides (a bank transfer id, an invoice)."
    )
    amount: Annotated[int, Field(ge=0, le=2**53 - 1, strict=True)] = Field(
        description="In this network's minor units. This side's whole link balance settles the"
        " link in full: both balances end at exactly zero, the rounding remainder included (0"
        " from the side whose balance is zero while the peer's is not)."
    )


class SettlementCancel(InputModel):
    reason: Reason


class SettlementView(OutputModel):
    id: uuid.UUID
    peer: str
    reference: str
    amount: int
    status: str = Field(
        description="agreed (recorded here), sent (executing), executed, refused (by the peer;"
        " may be recorded again), or cancelled (by this side's operator)."
    )
    status_reason: str | None = Field(description="Why it was cancelled.")
    transfer_id: uuid.UUID | None
    created_by: str
    created_at: datetime


class TransferRate(InputModel):
    num: Annotated[int, Field(ge=1, le=2**53 - 1, strict=True)]
    den: Annotated[int, Field(ge=1, le=2**53 - 1, strict=True)]
    version: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]


class LinkConfirm(InputModel):
    """A peer's agreement call: the rate it holds, with its version of it."""

    rate: TransferRate


class TransferMessage(InputModel):
    """One hop of a cross-network trade, as the sending network states it: validated once when
    it arrives, then passed on as it is; hashed, chained and sent as protocol.message."""

    model_config = InputModel.model_config | {"str_strip_whitespace": False}

    transfer_id: uuid.UUID
    kind: Annotated[str, Field(pattern="^(federation|settlement)$")]
    payer: Annotated[str, Field(min_length=3, max_length=100)]
    payee: Annotated[
        str,
        Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
    ]
    amount_sent: Annotated[int, Field(ge=0, le=2**53 - 1, strict=True)]
    amount_received: Annotated[int, Field(ge=0, le=2**53 - 1, strict=True)]
    rate: TransferRate
    expires_at: datetime
    description: Annotated[str, Field(max_length=500)] = ""
    reference: Annotated[str, Field(max_length=200)] | None = None
    via: list[PeerCode] = Field(
        default=[],
        max_length=MAX_HOPS - 1,
        description="The hubs the transfer went through, in order, the sender last; sent only"
        " when not empty (a transfer straight from its origin has the wire form it always had).",
    )

    @field_validator("expires_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """The moment in UTC, as the message states and hashes it (protocol.iso); a time
        without an offset is read as the server's local time."""
        try:
            return value.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 with an offset: not a moment Python can hold
            raise ValueError("expires_at is out of range") from None

    @model_validator(mode="after")
    def _sends_something(self) -> "TransferMessage":
        """Only a settlement in full from a side whose link balance is zero sends nothing."""
        if self.amount_sent < 1 and self.kind != "settlement":
            raise ValueError("amount_sent: at least 1")
        return self
