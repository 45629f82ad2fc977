import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from mutualcredit.accounts.models import AccountKind
from mutualcredit.accounts.schemas import Account
from mutualcredit.schemas import Flag, InputModel, Limit, Moment, OutputModel

Reason = Annotated[
    str,
    Field(min_length=1, max_length=500, description="Why: kept in the limit history for good."),
]


class LimitsUpdate(InputModel):
    credit_limit: Limit = Field(description="How far below zero the balance may go.")
    balance_max: Limit | None = Field(description="Upper bound of the balance; null for none.")
    reason: Reason
    until: Moment | None = Field(
        default=None,
        description="Make this a temporary change: at this moment the limits return by "
        "themselves to the permanent ones (those before the first of a run of temporary "
        "changes), and the return is recorded.",
    )


class LimitChange(OutputModel):
    id: int
    kind: Literal["open", "set", "temporary", "revert", "propagate", "default"]
    credit_limit_before: int | None
    credit_limit_after: int
    balance_max_before: int | None
    balance_max_after: int | None
    reason: str
    actor: str
    reverts_at: datetime | None
    changed_at: datetime


class LimitsSet(OutputModel):
    account: Account
    beyond_limits: list[Literal["credit_limit", "balance_max"]] = Field(
        description="Limits the account is now beyond: it can only move back toward them "
        "(lowering a limit below use is allowed; it never rewrites history)."
    )
    notice: str | None


class LimitsAt(OutputModel):
    account: str
    at: datetime
    credit_limit: int
    balance_max: int | None
    since: datetime = Field(description="When these limits took effect.")
    change_id: int


class DefaultsApply(InputModel):
    reason: Reason
    dry_run: Flag = Field(
        default=True, description="Only show which accounts would change, and how."
    )
    kinds: list[AccountKind] = Field(
        default_factory=lambda: [AccountKind.member],
        min_length=1,
        description="Account kinds to apply the defaults to.",
    )


class PlannedChange(OutputModel):
    account: str
    account_id: uuid.UUID
    credit_limit_before: int
    credit_limit_after: int
    balance_max_before: int | None
    balance_max_after: int | None
    beyond_limits_after: bool


class DefaultsApplied(OutputModel):
    dry_run: bool
    default_credit_limit: int
    default_balance_max: int | None
    changes: list[PlannedChange]
