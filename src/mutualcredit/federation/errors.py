"""Problems of federation. Each has a stable code, listed in the README."""

from typing import Any

from mutualcredit.errors import Forbidden, NotFound, ProblemError, Unauthorized, ValidationProblem


class PeerUnauthorized(Unauthorized):
    """A node-to-node request that cannot be trusted. Subclasses say why."""

    code = "peer_unauthorized"
    title = "The request is not signed by a registered peer"


class PeerSignatureMissing(PeerUnauthorized):
    code = "peer_signature_missing"
    title = "The request carries no federation signature"


class PeerUnknown(PeerUnauthorized):
    """The request is not signed by a key this network trusts for its sender: no such network
    here, no link to the sender, a key id not registered, revoked or past its expiry, or a
    signature that does not verify. One answer for all, word for word and header for header
    (peers.refused), so that nobody learns who is linked to whom."""

    code = "peer_unknown"
    title = "Unknown peer or peer key"

    def __init__(self, detail: str | None = None, **fields: Any) -> None:
        super().__init__(detail, **fields)
        # Closed as the gate closes it when it refuses before the body (auth.gate.refuse):
        # the answer is the same whether the gate or the route refused.
        self.headers["Connection"] = "close"


class PeerSignatureInvalid(PeerUnauthorized):
    """MC-Created is not unix seconds. (A signature that does not verify is peer_unknown: told
    apart, it would say that the key it names is registered here.)"""

    code = "peer_signature_invalid"
    title = "The request's signature headers are malformed"


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


class PeerKeyRetired(ProblemError):
    """The peer rotated this key away: once retired, a key is never trusted again (its expiry
    only comes closer, trigger link_peer_keys_guard), so a new key needs a new id."""

    status = 409
    code = "peer_key_retired"
    title = "This key of the peer was retired by a rotation"


class PeerKeyProofInvalid(ProblemError):
    """A rotation notice whose `proof` is not the new key's signature of the rotation: the
    sender does not show that it holds the key it asks this network to trust."""

    status = 422
    code = "peer_key_proof_invalid"
    title = "The new key did not sign the rotation"


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


class RouteTaken(ProblemError):
    """A destination of a link's route table is routed by another link of the network already:
    a destination has one route, so routing is never ambiguous. Members: `network` (the
    destination), `peer` (the link that routes it)."""

    status = 409
    code = "route_taken"
    title = "Another link routes that network"


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


class LinkLedgerMismatch(ProblemError):
    """A side's ledger differs from its records of the link: its link or settlement account
    holds another balance or pending figure than the link's transfers add up to (ledgers.py).
    Members: `side`, the network whose ledger differs; `differences`, each an `account`, a
    `figure` and its value in the `ledger` and by the `records`. Not retryable: the ledger has
    to be put right first."""

    status = 409
    code = "link_ledger_mismatch"
    title = "A ledger differs from its records of the link"


class SettlementNotFound(NotFound):
    code = "settlement_not_found"
    title = "No settlement with this reference on this link"


class SettlementInvalid(ProblemError):
    """More than the link balance, or a balance that does not allow it (`link_balance`)."""

    status = 409
    code = "settlement_invalid"
    title = "This settlement does not move the link balance toward zero"


class SettlementExists(ProblemError):
    """The reference is recorded on this link and still stands (agreed, sent or executed)."""

    status = 409
    code = "settlement_exists"
    title = "A settlement with this reference was recorded already"


class SettlementNotRecorded(ProblemError):
    """The owing side has not recorded this reference (the wrong order): it records it, then
    the executing side records it again under the same reference. Members `refused_by`,
    `transfer_id`."""

    status = 409
    code = "settlement_not_recorded"
    title = "The owing side has not recorded this settlement"


class SettlementAmountMismatch(ProblemError):
    """The two sides' amounts do not correspond at the link's rate, or a settlement in full
    that would not take both link balances to exactly zero. Members `recorded` and `received`
    (the owing side's units), `refused_by`, `transfer_id`."""

    status = 409
    code = "settlement_amount_mismatch"
    title = "The two sides recorded amounts that do not correspond"


class SettlementRefused(ProblemError):
    """The peer refused the settlement's transfer for another reason than the settlement's own
    (a suspended link, another rate, its limits): `remote_code`, `refused_by`, `transfer_id`.
    Recorded again under the same reference once that is resolved."""

    status = 409
    code = "settlement_refused"
    title = "The peer refused the settlement"


class SettlementNotCancellable(ProblemError):
    """Only a settlement recorded and not executed (agreed or refused) can be cancelled: one
    sent or executed has moved, or may move, both link balances (`settlement_status`)."""

    status = 409
    code = "settlement_not_cancellable"
    title = "This settlement is sent or executed and cannot be cancelled"


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
