"""Fee rules as the API reads and answers them.

A rule's fields depend on its kind (FIELDS_OF_KIND): a field of another kind is refused, naming
the field, rather than ignored, so that an operator never believes a rule does what it cannot.
The same checks (rule_problems) run on a new rule here and on a rule as a change would leave it
(fees.service.update_rule); the database's CHECK fee_rules_fields_of_kind_check keeps them too.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, ValidationInfo, field_validator, model_validator

from mutualcredit.accounts.schemas import AccountCode
from mutualcredit.fees.models import MAX_RATE_DENOMINATOR
from mutualcredit.schemas import Amount, Flag, InputModel, Limit, Moment, OutputModel

FeeRuleCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Unique in the network, never reused: letters, digits, '.', '_', '-'; "
        "1-64 characters.",
        examples=["levy"],
    ),
]
FeeKind = Literal["levy", "membership", "demurrage"]
Charge = Literal["payer", "payee", "both"]
Period = Literal["minute", "hour", "day", "week", "month", "year"]
Basis = Literal["balance_above", "beyond_credit_limit"]
OverLimit = Literal["refuse", "book"]
ChargedStatus = Literal["active", "suspended"]
Reason = Annotated[
    str,
    Field(min_length=1, max_length=500, description="Why: kept in the rule's history for good."),
]
Description = Annotated[str, Field(max_length=500)]
RatePart = Annotated[StrictInt, Field(ge=0, le=MAX_RATE_DENOMINATOR)]

# The fields each kind of rule takes, beyond those every rule has (code, kind, treasury,
# account_kind, over_limit, starts_at, ends_at, description).
FIELDS_OF_KIND: dict[str, frozenset[str]] = {
    "levy": frozenset({"charge", "rate", "amount", "minimum", "maximum"}),
    "membership": frozenset({"statuses", "amount", "period"}),
    "demurrage": frozenset(
        {"statuses", "rate", "minimum", "maximum", "basis", "threshold", "period"}
    ),
}
KIND_FIELDS = frozenset().union(*FIELDS_OF_KIND.values())
REQUIRED_OF_KIND: dict[str, tuple[str, ...]] = {
    "levy": ("charge",),
    "membership": ("amount", "period"),
    "demurrage": ("rate", "period", "basis"),
}


class FeeRate(InputModel):
    """An exact fraction num/den of what the rule applies to, 0 <= num <= den <= 10^12: at most
    the whole of it. 1/100 is 1 %; 25/10000 is 0.25 %."""

    num: RatePart
    den: Annotated[StrictInt, Field(ge=1, le=MAX_RATE_DENOMINATOR)]

    @model_validator(mode="after")
    def _at_most_whole(self) -> "FeeRate":
        if self.num > self.den:
            raise ValueError("num must not exceed den: a rate is at most the whole (1/1)")
        return self


def misplaced(kind: str) -> str:
    """Why a field of another kind of rule is refused."""
    takes = ", ".join(sorted(FIELDS_OF_KIND[kind]))
    return f"not a field of a {kind} rule (a {kind} rule takes {takes})"


def rule_problems(kind: str, values: dict[str, Any]) -> list[str]:
    """What is wrong with a rule of `kind` whose kind fields are `values` (None: not set), each
    as 'field: message'. Empty when the rule is well formed."""
    problems = [
        f"{name}: a {kind} rule needs one"
        for name in REQUIRED_OF_KIND[kind]
        if values.get(name) is None
    ]
    rate: FeeRate | None = values.get("rate")
    amount = values.get("amount")
    if kind == "levy" and (rate is None or rate.num == 0) and not amount:
        problems.append("rate: a levy charges a rate above 0, a fixed amount, or both")
    if kind == "membership" and amount == 0:
        problems.append("amount: a membership fee is at least 1")
    if kind == "demurrage" and rate is not None and rate.num == 0:
        problems.append("rate: a demurrage rate is above 0")
    minimum, maximum = values.get("minimum"), values.get("maximum")
    if minimum is not None and maximum is not None and minimum > maximum:
        problems.append("minimum: must not exceed maximum")
    statuses = values.get("statuses")
    if statuses is not None and len(set(statuses)) != len(statuses):
        problems.append("statuses: each status once")
    return problems


class FeeRuleCreate(InputModel):
    code: FeeRuleCode
    kind: FeeKind = Field(
        description="levy: on each trade; membership: a fixed fee per period; demurrage: a "
        "rate per period on balances above a threshold or beyond the credit limit."
    )
    treasury: AccountCode = Field(
        description="The active system account that receives the charges."
    )
    account_kind: Literal["member", "system"] = Field(
        default="member", description="The kind of account the rule charges."
    )
    statuses: list[ChargedStatus] | None = Field(
        default=None,
        min_length=1,
        description='Periodic rules: the statuses of the accounts charged. Default ["active"].',
    )
    charge: Charge | None = Field(
        default=None, description="Levies: who pays it, the payer, the payee, or both."
    )
    rate: FeeRate | None = Field(
        default=None, description="Levies and demurrage: the rate, an exact fraction."
    )
    amount: Limit | None = Field(
        default=None,
        description="Minor units. A levy's fixed part (added to the rate's; default 0); a "
        "membership rule's fee (required).",
    )
    minimum: Amount | None = Field(
        default=None, description="Levies and demurrage: a charge is at least this."
    )
    maximum: Amount | None = Field(
        default=None, description="Levies and demurrage: a charge is at most this."
    )
    basis: Basis | None = Field(
        default=None,
        description="Demurrage: balance_above (the part of a positive balance above the "
        "threshold) or beyond_credit_limit (the part of a debt beyond the credit limit and "
        "the threshold).",
    )
    threshold: Limit | None = Field(default=None, description="Demurrage: default 0.")
    period: Period | None = Field(
        default=None,
        description="Periodic rules: charged at the start of each UTC calendar period.",
    )
    over_limit: OverLimit = Field(
        default="refuse",
        description="When a charge would take an account past its credit limit (or the "
        "treasury past its upper limit). refuse: a levy refuses the trade; a periodic charge "
        "takes what can be paid and waives the rest. book: booked past the limit, and said so.",
    )
    starts_at: Moment | None = Field(
        default=None, description="When the rule takes effect; default now, never in the past."
    )
    ends_at: Moment | None = Field(default=None, description="When it ends; null: never.")
    description: Description = ""
    reason: Reason
    dry_run: Flag = Field(
        default=False,
        description="Only show the rule as it would be, and what it would charge; write nothing.",
    )

    @field_validator(*sorted(KIND_FIELDS))
    @classmethod
    def _of_its_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if value is not None and kind is not None and info.field_name not in FIELDS_OF_KIND[kind]:
            raise ValueError(misplaced(kind))
        return value

    @model_validator(mode="after")
    def _well_formed(self) -> "FeeRuleCreate":
        values = {name: getattr(self, name) for name in KIND_FIELDS}
        problems = rule_problems(self.kind, values)
        if (
            self.starts_at is not None
            and self.ends_at is not None
            and self.ends_at <= self.starts_at
        ):
            problems.append("ends_at: must be after starts_at")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Fields a change may set to null: no minimum, no maximum, no end.
NULLABLE = frozenset({"minimum", "maximum", "ends_at"})


class FeeRuleUpdate(InputModel):
    """Any field of the rule but its code and kind; the fields sent change, the others stay."""

    treasury: AccountCode | None = None
    account_kind: Literal["member", "system"] | None = None
    statuses: list[ChargedStatus] | None = Field(default=None, min_length=1)
    charge: Charge | None = None
    rate: FeeRate | None = None
    amount: Limit | None = None
    minimum: Amount | None = Field(default=None, description="null: no minimum.")
    maximum: Amount | None = Field(default=None, description="null: no maximum.")
    basis: Basis | None = None
    threshold: Limit | None = None
    period: Period | None = None
    over_limit: OverLimit | None = None
    starts_at: Moment | None = Field(
        default=None, description="Only before the rule has started, and not into the past."
    )
    ends_at: Moment | None = Field(
        default=None, description="Not in the past; null: never. End a rule to retire it."
    )
    description: Description | None = None
    reason: Reason

    @model_validator(mode="after")
    def _null_only_where_it_means_none(self) -> "FeeRuleUpdate":
        for name in sorted(self.model_fields_set - NULLABLE - {"reason"}):
            if getattr(self, name) is None:
                raise ValueError(f"{name}: may not be null")
        return self


class FeeRule(OutputModel):
    """A rule. The fields of another kind of rule are null."""

    code: str
    kind: FeeKind
    treasury: str
    account_kind: str
    statuses: list[str] | None
    charge: Charge | None
    rate: FeeRate | None
    amount: int | None
    minimum: int | None
    maximum: int | None
    basis: Basis | None
    threshold: int | None
    period: Period | None
    over_limit: OverLimit
    starts_at: datetime
    ends_at: datetime | None
    description: str
    in_force: bool = Field(description="Whether the rule is in force now.")
    created_by: str
    created_at: datetime
    updated_at: datetime


class FeeRuleChange(OutputModel):
    id: int
    kind: Literal["created", "changed"]
    before: dict[str, Any] | None = Field(
        description="The rule's fields before (as a rule shows them); null when created."
    )
    after: dict[str, Any]
    reason: str
    actor: str
    changed_at: datetime


class PreviewCharge(OutputModel):
    account: str
    base: int = Field(
        description="What the fee applies to: a levy, the sum of the trades' amounts; "
        "demurrage, the part of the balance above the threshold (or of the debt beyond the "
        "credit limit and threshold); membership, the fee."
    )
    fee: int = Field(description="The charge the rule makes.")
    amount: int = Field(description="What would be booked.")
    waived: int = Field(description="What the account could not pay (over_limit refuse).")
    past_limit: bool = Field(description="Booked past a limit (over_limit book).")
    trades: int | None = Field(description="Levies: how many trades it would have charged.")


class FeePreview(OutputModel):
    rule: FeeRule
    charges: list[PreviewCharge] = Field(
        description="Periodic rules: each account's charge at the next boundary, on its balance "
        "now. Levies: what the rule would have charged each account on the last 30 days' "
        "trades. Accounts charged nothing are left out."
    )
    due_at: datetime | None = Field(
        description="Periodic rules: the next boundary, when the charges are due."
    )


class FeeCharge(OutputModel):
    id: int
    rule: str
    kind: FeeKind
    account: str
    treasury: str
    amount: int = Field(description="What was booked, as the trade trade_id.")
    waived: int = Field(description="What the account could not pay (periodic charges).")
    past_limit: bool
    trade_id: uuid.UUID | None = Field(description="The fee trade; null when nothing was booked.")
    cause_trade_id: uuid.UUID | None = Field(description="Levies: the trade levied on.")
    due_at: datetime | None = Field(description="Periodic charges: the boundary charged.")
    created_at: datetime
