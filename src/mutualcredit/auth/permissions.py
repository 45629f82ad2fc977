"""Who may do what: checks on a Principal's role. Pure functions, used by routers and services.

The caller's access to the network is checked before these (a key of another network sees 404).

| role     | reads                      | writes                                         |
|----------|----------------------------|------------------------------------------------|
| platform | everything                 | everything                                     |
| operator | its network                | its network                                    |
| auditor  | its network                | nothing                                        |
| member   | its own account and trades | pays from its account, its requests, approvals |
"""

from mutualcredit.auth.models import Role
from mutualcredit.auth.service import Principal
from mutualcredit.errors import Forbidden


def require_platform(principal: Principal) -> None:
    if principal.role is not Role.platform:
        raise Forbidden("Only a platform key may do this")


def require_operator(principal: Principal) -> None:
    """Writes that run the network: operators (and the platform)."""
    if principal.role not in (Role.platform, Role.operator):
        raise Forbidden("Only an operator of this network may do this")


def require_reader(principal: Principal) -> None:
    """Reads of the whole network: operators, auditors (and the platform)."""
    if principal.role not in (Role.platform, Role.operator, Role.auditor):
        raise Forbidden("Only an operator or auditor of this network may read this")


def require_writer(principal: Principal) -> None:
    """Any write at all: an auditor's key is read-only."""
    if principal.role is Role.auditor:
        raise Forbidden("An auditor key is read-only")
