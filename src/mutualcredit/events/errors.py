"""The events domain's errors: one class per condition, each with a stable code."""

from mutualcredit.errors import ProblemError


class UnknownEventType(ProblemError):
    """A filter or subscription names an event type the service does not have."""

    status = 422
    code = "unknown_event_type"
    title = "Unknown event type"
