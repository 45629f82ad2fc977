import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, computed_field, field_validator

from mutualcredit.accounts.models import RESERVED_PREFIXES, AccountKind, AccountStatus
from mutualcredit.schemas import InputModel, Limit, OutputModel

AccountCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Unique in the network: letters, digits, '.', '_', '-'; 1-64 characters.",
        examples=["BAKERY01"],
    ),
]


class AccountCreate(InputModel):
    code: AccountCode
    name: Annotated[str, Field(max_length=200)] = ""
    kind: Literal[AccountKind.member, AccountKind.system] = Field(
        default=AccountKind.member,
        description="A link's accounts (kinds link and settlement) are made by creating the link.",
    )
    credit_limit: Limit | None = Field(
        default=None, description="Omit to use the network's default_credit_limit."
    )
    balance_max: Limit | None = Field(
        default=None,
        description="Omit to use the network's default_balance_max; null for no upper limit.",
    )

    @field_validator("code")
    @classmethod
    def _not_reserved(cls, code: str) -> str:
        if code.lower().startswith(RESERVED_PREFIXES):
            raise ValueError(
                "codes starting link. or settlement. are the accounts of federation links, "
                "made by creating the link"
            )
        return code


_AVAILABLE = "What the account can still pay: balance - pending_debits + credit_limit."
_HEADROOM = "What it can still receive before balance_max; null when it has no upper limit."


class Account(OutputModel):
    id: uuid.UUID
    code: str
    name: str
    kind: AccountKind
    status: AccountStatus
    balance: int
    pending_debits: int = Field(description="Held for pending trades this account pays.")
    pending_credits: int = Field(description="Held for pending trades this account receives.")
    credit_limit: int
    balance_max: int | None
    revert_at: datetime | None = Field(
        description="When a temporary limit ends and the limits return to the values below."
    )
    revert_credit_limit: int | None
    revert_balance_max: int | None
    created_at: datetime

    @computed_field(description=_AVAILABLE)  # type: ignore[prop-decorator]
    @property
    def available(self) -> int:
        return self.balance - self.pending_debits + self.credit_limit

    @computed_field(description=_HEADROOM)  # type: ignore[prop-decorator]
    @property
    def headroom(self) -> int | None:
        if self.balance_max is None:
            return None
        return self.balance_max - self.balance - self.pending_credits


class StatementEntry(OutputModel):
    id: int
    trade_id: uuid.UUID
    amount: int = Field(description="Signed: negative when the account paid.")
    balance_after: int
    booked_at: datetime
    counterparty: str
    description: str
    external_ref: str | None


class Statement(OutputModel):
    account: str
    since: datetime | None = Field(
        description="Start of the period (inclusive); null: the beginning."
    )
    until: datetime | None = Field(description="End of the period (exclusive); null: now.")
    opening_balance: int
    closing_balance: int
    total_debits: int = Field(description="Sum paid in the period, as a positive number.")
    total_credits: int
    entry_count: int
    entries: list[StatementEntry] = Field(description="The first page of the period's entries.")
    next_cursor: str | None


StatusAction = Literal["suspend", "reactivate", "close"]


class StatusChange(InputModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Why: kept in the audit log."
    )


class AccountClose(StatusChange):
    write_off_to: AccountCode | None = Field(
        default=None,
        description="A system account that takes over the balance (debt or credit) so the "
        "account can close at zero: booked as a write-off trade, with the reason (required).",
    )
