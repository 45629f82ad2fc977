"""Problems of federation. Each has a stable code, listed in the README."""

from mutualcredit.errors import Forbidden, NotFound, ProblemError, Unauthorized, ValidationProblem


class PeerUnauthorized(Unauthorized):
    """A node-to-node request that cannot be trusted. Subclasses say why."""

    code = "peer_unauthorized"
    title = "The request is not signed by a registered peer"


class PeerSignatureMissing(PeerUnauthorized):
    code = "peer_signature_missing"
    title = "The request carries no federation signature"


class PeerUnknown(PeerUnauthorized):
    """No link from this network to the sender, or the key id is not registered for it."""

    code = "peer_unknown"
    title = "Unknown peer or peer key"


class PeerSignatureInvalid(PeerUnauthorized):
    code = "peer_signature_invalid"
    title = "The signature does not verify with the peer's registered key"


class PeerSignatureStale(PeerUnauthorized):
    """MC-Created is further from now than the allowed clock skew."""

    code = "peer_signature_stale"
    title = "The signed request is too old, or from the future"


class PeerReplay(PeerUnauthorized):
    code = "peer_request_replayed"
    title = "This signed request was received before"


class PeerForbidden(Forbidden):
    """A peer acting outside its own link."""

    code = "peer_forbidden"
    title = "A peer may only act on its own link"


class LinkNotFound(NotFound):
    code = "link_not_found"
    title = "No such link"


class PeerKeyNotFound(NotFound):
    code = "peer_key_not_found"
    title = "No such key of the peer on this link"


class PeerKeyConflict(ProblemError):
    """A key id of the peer is registered already with another public key: a key id names one
    key for good, so a new key needs a new id."""

    status = 409
    code = "peer_key_conflict"
    title = "This key id is registered with another public key"


class LinkExists(ProblemError):
    status = 409
    code = "link_exists"
    title = "A link to this network exists, or its account codes are taken"


class LinkNotActive(ProblemError):
    """The link is proposed (not agreed by both sides yet) or suspended."""

    status = 409
    code = "link_not_active"
    title = "The link is not active"


class LinkRateMismatch(ProblemError):
    status = 409
    code = "link_rate_mismatch"
    title = "The two sides of the link do not hold the same exchange rate"


class PeerUnreachable(ProblemError):
    """The peer did not answer, or answered with an error. Safe to retry."""

    status = 502
    code = "peer_unreachable"
    title = "The peer network could not be reached, or refused"
    retryable = True


class InvalidAddress(ValidationProblem):
    code = "invalid_address"
    title = "Not an address of the form network/account"


class NoRoute(ProblemError):
    status = 409
    code = "no_route"
    title = "No link leads to that network"


class AmountTooSmall(ProblemError):
    """At the link's rate, the amount is worth less than one minor unit on the other side."""

    status = 422
    code = "amount_too_small"
    title = "The amount converts to nothing on the other side"


class AmountTooLarge(ProblemError):
    """At the link's rate, the amount is worth more on the other side than an amount may be
    (2^53 - 1 minor units)."""

    status = 422
    code = "amount_too_large"
    title = "The amount converts to more than an amount may be on the other side"


class TransferRefused(ProblemError):
    """The destination (or a network on the route) refused the trade; the hold is voided.
    Members: `refused_by`, `remote_code` (the refusal's own code), `trade_id`."""

    status = 409
    code = "transfer_refused"
    title = "The other network refused the trade"


class TransferConflict(ProblemError):
    status = 409
    code = "transfer_conflict"
    title = "This transfer id was used before with different content"


class CheckpointMismatch(ProblemError):
    status = 409
    code = "checkpoint_mismatch"
    title = "The two sides' records differ at this point"


class SettlementInvalid(ProblemError):
    status = 409
    code = "settlement_invalid"
    title = "This settlement does not move the link balance toward zero"


class SettlementExists(ProblemError):
    status = 409
    code = "settlement_exists"
    title = "A settlement with this reference was recorded already"


class TransferNotFound(NotFound):
    """No transfer sent over this link with that id (an operator resolves the one it sent)."""

    code = "transfer_not_found"
    title = "No such transfer sent over this link"


class TransferNotExpired(ProblemError):
    """The transfer's expiry has not passed: the peer may still decide it, and the outbox is
    still asking. Members: `expires_at`."""

    status = 409
    code = "transfer_not_expired"
    title = "The transfer's expiry has not passed yet"


class TransferNotInFlight(ProblemError):
    """Only a transfer whose outcome is unknown (no final receipt) is resolved by an operator.
    Members: `transfer_status`."""

    status = 409
    code = "transfer_not_in_flight"
    title = "The transfer's outcome is known already"
