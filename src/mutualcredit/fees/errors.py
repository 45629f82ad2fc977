"""The refusals of fee rules. Each has a stable code, listed in the README.

Closing an account that is the treasury of a rule is refused by the accounts domain
(`accounts.errors.TreasuryInUse`, 409 `treasury_in_use`): the ledger's core cannot depend on
fees, which sit above it.
"""

from mutualcredit.errors import NotFound, ProblemError


class FeeRuleNotFound(NotFound):
    """No rule with this code in the network, or none a member's account may be charged by."""

    code = "fee_rule_not_found"
    title = "No such fee rule"


class FeeRuleExists(ProblemError):
    """A rule with this code exists in the network: codes are never reused (rules are never
    deleted, so every charge keeps its rule)."""

    status = 409
    code = "fee_rule_exists"
    title = "A fee rule with this code exists in the network"


class FeeRuleOverlap(ProblemError):
    """Another rule of the same kind would charge the same accounts (the same account kind and,
    for levies, the same side of a trade) at the same time. Member: `overlaps`, its code."""

    status = 409
    code = "fee_rule_overlap"
    title = "Another fee rule charges the same accounts at the same time"


class TreasuryInvalid(ProblemError):
    """A rule's treasury is an active system account of its network. Member: `treasury`."""

    status = 422
    code = "treasury_invalid"
    title = "The treasury must be an active system account of the network"
