"""The ledger's refusals of a trade. Each has a stable code, listed in the README."""

from mutualcredit.accounts.errors import (
    AccountClosed,
    AccountNotFound,
    AccountReserved,
    AccountSuspended,
)
from mutualcredit.errors import IdempotencyConflict, NotFound, ProblemError, ValidationProblem
from mutualcredit.trades.repository import LedgerResult


class CreditLimitExceeded(ProblemError):
    """The payer's balance would fall below minus its credit limit.

    Members: `available` (what it can pay now), `shortfall` (what is missing)."""

    status = 409
    code = "credit_limit_exceeded"
    title = "Credit limit exceeded"


class BalanceMaxExceeded(ProblemError):
    """The payee's balance would rise above its balance_max. Members: `headroom`, `excess`."""

    status = 409
    code = "balance_max_exceeded"
    title = "Upper balance limit exceeded"


class TradeNotFound(NotFound):
    code = "trade_not_found"
    title = "No such trade"


class TradeNotPending(ProblemError):
    """Only a pending trade can be posted or voided; `trade_status` says what it is now."""

    status = 409
    code = "trade_not_pending"
    title = "The trade is not pending"


class TradeExpired(ProblemError):
    """The hold passed its expires_at before it was posted; it is expired now."""

    status = 409
    code = "trade_expired"
    title = "The pending trade has expired"


class AmountExceedsHold(ProblemError):
    status = 409
    code = "amount_exceeds_hold"
    title = "The amount to post is larger than the amount held"


class AmountOutOfRange(ProblemError):
    """A balance would leave PostgreSQL's bigint range; only possible without balance_max."""

    status = 409
    code = "amount_out_of_range"
    title = "The amount would take a balance out of range"


class TradeNotPosted(ProblemError):
    """Only a posted trade can be reversed; a pending one is voided instead."""

    status = 409
    code = "trade_not_posted"
    title = "The trade is not posted"


class TradeNotReversible(ProblemError):
    """A reversal is not reversed again: book a new trade instead."""

    status = 409
    code = "trade_not_reversible"
    title = "A reversal cannot be reversed"


class TradeAlreadyReversed(ProblemError):
    status = 409
    code = "trade_already_reversed"
    title = "The trade has been reversed already"


class TradeFederated(ProblemError):
    """A cross-network hold is posted or voided by the protocol, as the destination decides."""

    status = 409
    code = "trade_federated"
    title = "A cross-network trade is finished by the federation protocol"


class SameAccount(ProblemError):
    status = 422
    code = "same_account"
    title = "Payer and payee must be different accounts"


# The codes the ledger's SQL functions return, mapped to the errors that render them.
REFUSALS: dict[str, type[ProblemError]] = {
    cls.code: cls
    for cls in (
        CreditLimitExceeded,
        BalanceMaxExceeded,
        AccountNotFound,
        AccountReserved,
        AccountSuspended,
        AccountClosed,
        TradeNotFound,
        TradeNotPending,
        TradeExpired,
        AmountExceedsHold,
        TradeAlreadyReversed,
        IdempotencyConflict,
        ValidationProblem,
    )
}

# What the detail of each refusal says, from the numbers the ledger returned with it.
_MESSAGES = {
    "credit_limit_exceeded": "{account} can pay at most {available} now",
    "balance_max_exceeded": "{account} can receive at most {headroom} now",
    "account_not_found": "No account {account} in this network",
    "account_suspended": "Account {account} is suspended",
    "account_closed": "Account {account} is closed",
    "account_reserved": "Account {account} stands for another network: only federation moves it",
    "trade_not_pending": "The trade is {trade_status}, not pending",
    "trade_expired": "The hold expired at {expires_at}",
    "amount_exceeds_hold": "Only {held} is held; {requested} cannot be posted",
    "idempotency_conflict": "Key {key} was used before with a different request",
    "trade_already_reversed": "Trade {trade_id} has been reversed already",
}


def ledger_refusal(result: LedgerResult, *, commit: bool = False) -> ProblemError:
    """The error a refusal of the ledger's SQL functions is answered with: its class by code
    (REFUSALS), the ledger's numbers as its members. The one way from an outcome to an error.

    `commit`: the refusal changed what must be kept (a rejected trade key recorded in the
    request's transaction, a hold found expired), so the transaction commits before it is
    answered."""
    if result.problem_code is None:
        raise ValueError(f"a ledger outcome {result.outcome!r} is not a refusal")
    detail = result.problem_detail
    template = _MESSAGES.get(result.problem_code)
    try:
        message = template.format(**detail) if template else None
    except KeyError:
        message = None
    if result.problem_code == ValidationProblem.code and detail.get("errors"):
        first = detail["errors"][0]
        message = f"{'.'.join(first['location'][1:])}: {first['message']}"
    error = REFUSALS[result.problem_code](message, commit=commit, **detail)
    if result.outcome == "replayed":
        # The first answer to this key, sent again: marked as a replayed trade is.
        error.headers["Idempotent-Replayed"] = "true"
    return error
