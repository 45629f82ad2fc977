from mutualcredit.errors import NotFound, ProblemError


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"


class AccountCodeTaken(ProblemError):
    status = 409
    code = "account_code_taken"
    title = "An account with this code exists in the network"


class AccountSuspended(ProblemError):
    """The account is suspended: no trades in or out until an operator reactivates it."""

    status = 409
    code = "account_suspended"
    title = "The account is suspended"


class AccountClosed(ProblemError):
    status = 409
    code = "account_closed"
    title = "The account is closed"


class AccountReserved(ProblemError):
    """The account stands for another network (`link.<peer>`, `settlement.<peer>`): only the
    federation protocol's own bookings move it, and only the link changes its status."""

    status = 409
    code = "account_reserved"
    title = "The account belongs to a federation link"


class AccountNotEmpty(ProblemError):
    """Closing needs a zero balance and no pending trades."""

    status = 409
    code = "account_not_empty"
    title = "The account still holds a balance or pending trades"


class WriteOffAccountInvalid(ProblemError):
    """A write-off goes to an active system account other than the one closing."""

    status = 409
    code = "write_off_account_invalid"
    title = "The write-off account must be another, active, system account"


class TreasuryInUse(ProblemError):
    """The account is the treasury of a fee rule that has not ended: the rule would have nowhere
    to book. End the rule, or name another treasury, first. Member: `fee_rule`, its code."""

    status = 409
    code = "treasury_in_use"
    title = "The account is the treasury of a fee rule"
