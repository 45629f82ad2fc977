from mutualcredit.errors import NotFound, ProblemError


class RequestNotFound(NotFound):
    code = "request_not_found"
    title = "No such payment request"


class RequestNotOpen(ProblemError):
    """The request was accepted, rejected or cancelled already (`request_status`)."""

    status = 409
    code = "request_not_open"
    title = "The payment request is not open"


class RequestExpired(ProblemError):
    status = 409
    code = "request_expired"
    title = "The payment request has expired"
