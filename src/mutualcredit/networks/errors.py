from mutualcredit.errors import NotFound, ProblemError


class NetworkNotFound(NotFound):
    code = "network_not_found"
    title = "No such network"


class NetworkCodeTaken(ProblemError):
    status = 409
    code = "network_code_taken"
    title = "A network with this code exists"
