"""What a client can get wrong about webhook endpoints, one class per condition."""

from mutualcredit.errors import NotFound, ProblemError


class WebhookNotFound(NotFound):
    """No webhook endpoint with this id in this network."""

    code = "webhook_not_found"
    title = "Webhook endpoint not found"


class WebhookUrlNotAllowed(ProblemError):
    """The URL is not one this service may call: not http(s), or a loopback, private,
    link-local or reserved address (see MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE)."""

    status = 422
    code = "webhook_url_not_allowed"
    title = "Webhook URL not allowed"


class EventNotFound(NotFound):
    """No event with this seq in this network that the endpoint subscribes to."""

    code = "event_not_found"
    title = "Event not found"


class WebhookLimitReached(ProblemError):
    """A member account already has as many enabled endpoints as it may
    (MUTUALCREDIT_WEBHOOK_MAX_PER_MEMBER): disable one first."""

    status = 409
    code = "webhook_limit_reached"
    title = "Too many webhook endpoints for this account"
