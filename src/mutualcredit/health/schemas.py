from datetime import datetime
from typing import Literal

from pydantic import Field

from mutualcredit.schemas import OutputModel

Ratio = str  # an exact decimal rendered from integers, never a float


class Bucket(OutputModel):
    start: datetime
    trades: int
    volume: int
    active_accounts: int = Field(description="Accounts that paid or were paid in the bucket.")


class Totals(OutputModel):
    trades: int
    volume: int
    active_accounts: int


class AccountCounts(OutputModel):
    members: int = Field(description="Member accounts not closed.")
    active: int
    suspended: int


class Velocity(OutputModel):
    volume: int
    positive_balance_total: int = Field(description="Sum of all positive member balances now.")
    ratio: Ratio | None = Field(
        description="volume / positive_balance_total, to 4 places; null when nothing is held."
    )


class LimitUse(OutputModel):
    beyond: int = Field(description="Beyond the limit (it was lowered, or overridden).")
    at: int = Field(description="Exactly at the limit: cannot go further.")
    near: int = Field(description="Using at least near_percent of the limit.")
    share_at_or_beyond: Ratio
    share_near: Ratio


class Band(OutputModel):
    low: int | None = Field(description="Lower bound (exclusive above zero); null: unbounded.")
    high: int | None = Field(description="Upper bound (exclusive below zero); null: unbounded.")
    accounts: int


class Dormant(OutputModel):
    days: int
    accounts: int = Field(description="Members holding a non-zero balance with no trade since.")
    balance_abs_total: int


class FeeIncome(OutputModel):
    """One fee rule's charges made in the period (by the time each was booked)."""

    rule: str = Field(description="The rule's code.")
    kind: Literal["levy", "membership", "demurrage"]
    charges: int = Field(description="Charges made, including those wholly waived.")
    amount: int = Field(description="What the charges booked to the treasury, in minor units.")
    waived: int = Field(
        description="What accounts could not pay (periodic rules with over_limit refuse)."
    )
    refunded: int = Field(
        description="Reversals in the period of this rule's fee trades (of any period): refunds,"
        " and the levies of reversed trades."
    )


class NetworkHealth(OutputModel):
    network: str
    as_of: datetime
    period: Literal["day", "week", "month"]
    since: datetime
    until: datetime
    series: list[Bucket]
    totals: Totals
    accounts: AccountCounts
    velocity: Velocity
    near_percent: int
    credit_limit: LimitUse
    balance_max: LimitUse
    balance_bands: list[Band] = Field(
        description="Member balances in bands of the network's default credit limit."
    )
    dormant: Dormant
    fees: list[FeeIncome] = Field(
        description="Fee income per rule over the period (from, to), by rule code: each rule in"
        " force at some time in it, or that charged in it."
    )
