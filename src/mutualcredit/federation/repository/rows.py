"""What federation's queries return: one frozen dataclass per kind of row, with typed fields.

A row is built from a result's mapping by its field names (`of`): each query selects exactly the
columns its row type names, so a column a query forgets is an error where the row is built, not
a `KeyError` somewhere downstream.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from mutualcredit.federation import protocol
from mutualcredit.federation.schemas import TransferMessage


class _Dataclass(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


R = TypeVar("R", bound=_Dataclass)


def of(cls: type[R], columns: Mapping[Any, Any]) -> R:
    """A row of type `cls` from a result row's mapping, by field name."""
    return cls(**{name: columns[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class NetworkRow:
    id: uuid.UUID
    code: str
    name: str
    unit_name: str
    unit_symbol: str
    scale: int
    descriptor_public: bool


@dataclass(frozen=True, slots=True)
class NodeKeyRow:
    """One of this network's signing keys, as its descriptor publishes it."""

    key_id: str
    public_key: bytes
    status: str
    created_at: datetime
    retired_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """This network's active signing key, its private half still sealed."""

    key_id: str
    sealed_private_key: bytes
    network_code: str


@dataclass(frozen=True, slots=True)
class LinkRow:
    """This network's side of a link (models.Link), with the codes of its network and of its
    two accounts: the link account `link.<peer>` and the settlement account."""

    id: uuid.UUID
    network_id: uuid.UUID
    network_code: str
    peer_code: str
    peer_url: str
    status: str
    status_reason: str | None
    account_id: uuid.UUID
    account_code: str
    settlement_account_id: uuid.UUID
    settlement_account_code: str
    rate_num: int
    rate_den: int
    rate_version: int
    default_route: bool
    agreed_at: datetime | None
    peer_status: str | None
    told_status: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LinkHealthRow:
    """How a link's peer has answered: the last signed answer, the failed calls in a row since
    (and when the last failed), and the transfers waiting for it (out, undecided: how many,
    the oldest) or disputed with it."""

    last_contact_at: datetime | None
    consecutive_failures: int
    last_failure_at: datetime | None
    transfers_waiting: int
    oldest_waiting_at: datetime | None
    transfers_disputed: int


@dataclass(frozen=True, slots=True)
class LinkOverview:
    """A link with its link account's figures, the peer's keys and the link's health, as
    operators see it."""

    link: LinkRow
    balance: int
    pending_debits: int
    pending_credits: int
    credit_limit: int
    balance_max: int | None
    peer_keys: list[dict[str, Any]]
    routes: list[str]
    health: LinkHealthRow


@dataclass(frozen=True, slots=True)
class AccountRow:
    """A link's account: its code and figures."""

    id: uuid.UUID
    code: str
    balance: int
    pending_debits: int
    pending_credits: int


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last place of a link's inbound chain: its seq (0 for none) and hash."""

    seq: int
    hash: bytes | None


@dataclass(frozen=True, slots=True)
class TransferRow:
    """A transfer as this network keeps it (models.Transfer has its states): what it says,
    `message`, the same at both ends, and where it stands here. `peer_code` and
    `network_code` name the link's two networks."""

    id: int
    network_id: uuid.UUID
    network_code: str
    link_id: uuid.UUID
    peer_code: str
    direction: str
    status: str
    trade_id: uuid.UUID | None
    message: TransferMessage
    request_hash: bytes
    refusal_code: str | None
    refusal_detail: dict[str, Any] | None
    seq: int | None
    chain_hash: bytes | None
    attempts: int
    last_error: str | None
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    resolution_reason: str | None
    resolved_by: str | None
    peer_decision: str | None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "id",
        "network_id",
        "network_code",
        "link_id",
        "peer_code",
        "direction",
        "status",
        "trade_id",
        "request_hash",
        "refusal_code",
        "refusal_detail",
        "seq",
        "chain_hash",
        "attempts",
        "last_error",
        "created_at",
        "resolved_at",
        "resolution",
        "resolution_reason",
        "resolved_by",
        "peer_decision",
    )

    @classmethod
    def of(cls, columns: Mapping[Any, Any]) -> "TransferRow":
        return cls(
            message=protocol.message_of_columns(columns),
            **{name: columns[name] for name in cls.FIELDS},
        )


@dataclass(frozen=True, slots=True)
class SettlementRow:
    """A settlement recorded on a link (models.Settlement has its states)."""

    id: uuid.UUID
    link_id: uuid.UUID
    peer_code: str
    reference: str
    amount: int
    status: str
    status_reason: str | None
    transfer_id: uuid.UUID | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    id: int
    payload: dict[str, Any]
    signatures: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """One of a link's two accounts as the ledger holds it (balance, pending debits and credits)
    and as the link's transfer records say it should be (`records_*`), read in one snapshot."""

    code: str
    balance: int
    pending_debits: int
    pending_credits: int
    records_balance: int
    records_pending_debits: int
    records_pending_credits: int
