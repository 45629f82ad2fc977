from mutualcredit.errors import NotFound


class NoLimitsThen(NotFound):
    """The account did not exist at that moment."""

    code = "no_limits_then"
    title = "The account had no limits at that moment"
