"""The ledger's refusals of a trade. Each has a stable code, listed in the README."""

from mutualcredit.accounts.errors import AccountClosed, AccountNotFound, AccountSuspended
from mutualcredit.errors import IdempotencyConflict, NotFound, ProblemError


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
        AccountSuspended,
        AccountClosed,
        TradeNotFound,
        TradeNotPending,
        TradeExpired,
        AmountExceedsHold,
        TradeAlreadyReversed,
        IdempotencyConflict,
    )
}
