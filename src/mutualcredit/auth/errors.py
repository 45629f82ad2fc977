from mutualcredit.errors import NotFound, ProblemError


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "No such API key"


class LastOperatorKey(ProblemError):
    """An operator key may not revoke the network's last active operator key: the network would
    be locked out of its own administration. Create another operator key first (or ask the
    platform, whose keys are not bound to one network)."""

    status = 409
    code = "last_operator_key"
    title = "The network's last operator key cannot be revoked"
