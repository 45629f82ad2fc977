"""Errors a client can cause, rendered as RFC 9457 problem details with a stable `code`.

Hierarchy (each domain adds its own leaves in its errors.py):

    ProblemError                      status, code, title; extra members in `detail_fields`
    ├── ValidationProblem     422     malformed input
    ├── Unauthorized          401     no key, unknown key, revoked key
    ├── Forbidden             403     a key that may not do this
    ├── NotFound              404     unknown resource (or one in another tenant)
    ├── IdempotencyConflict   409     a key reused with a different request
    └── ...                           the ledger's refusals (409), in their domains

`commit = True` on a refusal means the ledger recorded it (a rejected trade key, an expired hold):
the request's transaction commits before the problem is sent.
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

log = logging.getLogger("mutualcredit")

PROBLEM_TYPE_BASE = "https://mutualcredit.dev/problems/"
# Members every problem has; a refusal's own numbers must use other names.
RESERVED_MEMBERS = frozenset({"type", "title", "status", "code", "detail", "instance"})


class ProblemError(Exception):
    """Base for every error a client can cause; rendered as application/problem+json."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, *, commit: bool = False, **fields: Any) -> None:
        clash = RESERVED_MEMBERS.intersection(fields)
        if clash:
            raise ValueError(f"problem members {sorted(clash)} are reserved by RFC 9457")
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.fields = fields
        self.commit = commit
        self.headers: dict[str, str] = {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.fields)
        return body


class ValidationProblem(ProblemError):
    """The request is malformed: wrong types, out-of-range numbers, unknown fields."""

    status = 422
    code = "validation_error"
    title = "The request is not valid"


class Unauthorized(ProblemError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    code = "unauthorized"
    title = "A valid API key is required"

    def __init__(self, detail: str | None = None, **fields: Any) -> None:
        super().__init__(detail, **fields)
        self.headers["WWW-Authenticate"] = 'Bearer realm="mutualcredit"'


class Forbidden(ProblemError):
    """The key is valid but its role may not do this."""

    status = 403
    code = "forbidden"
    title = "This key may not do that"


class NotFound(ProblemError):
    status = 404
    code = "not_found"
    title = "No such resource"


class IdempotencyConflict(ProblemError):
    """The Idempotency-Key was used before with a different request."""

    status = 409
    code = "idempotency_conflict"
    title = "Idempotency key reused with a different request"


class IdempotencyKeyRequired(ProblemError):
    status = 422
    code = "idempotency_key_required"
    title = "This request needs an Idempotency-Key header"


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class RequestTimeout(ProblemError):
    """The request's headers or body did not arrive in time; the connection is closed."""

    status = 408
    code = "request_timeout"
    title = "The request did not arrive in time"
    retryable = True


class HeadersTooLarge(ProblemError):
    """The request line and headers are longer than the server reads."""

    status = 431
    code = "headers_too_large"
    title = "The request headers are too large"


class ServerBusy(ProblemError):
    """The worker holds as many connections, or as many bytes of request bodies, as it may."""

    status = 503
    code = "server_busy"
    title = "The server is busy"
    retryable = True

    def __init__(self, detail: str | None = None, **fields: Any) -> None:
        super().__init__(detail, **fields)
        self.headers["Retry-After"] = "1"


class MethodNotAllowed(ProblemError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class ServiceUnavailable(ProblemError):
    status = 503
    code = "service_unavailable"
    title = "The service cannot answer now"
    retryable = True


class DatabaseUnavailable(ProblemError):
    """The database could not be reached or dropped the connection. Retry with the same
    Idempotency-Key: the write either committed (the retry replays it) or did not."""

    status = 503
    code = "database_unavailable"
    title = "The database is unavailable"
    retryable = True

    def __init__(self, detail: str | None = None, **fields: Any) -> None:
        super().__init__(detail, **fields)
        self.headers["Retry-After"] = "1"


class RateLimited(ProblemError):
    """Too many requests with this key; `Retry-After` says when to try again."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"
    retryable = True

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Slow down: retry in {retry_after} s", retry_after=retry_after)
        self.headers["Retry-After"] = str(retry_after)


class InternalError(ProblemError):
    status = 500
    code = "internal_error"
    title = "Internal error"
    retryable = True


def problem_response(exc: ProblemError, request: Request | None = None) -> Response:
    instance = request.url.path if request is not None else None
    return Response(
        content=orjson.dumps(exc.to_problem(instance)),
        status_code=exc.status,
        media_type="application/problem+json",
        headers=exc.headers,
    )


def _jsonable(value: Any) -> Any:
    """Error details echo parts of the request, which may hold anything: keep only what JSON
    can carry, and make every string valid UTF-8 (a lone surrogate would fail the encoder)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


# SQLSTATE class 22, "data exception": the database refused a value itself.
DATA_EXCEPTION = "22"


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", exc)
    value = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return value if isinstance(value, str) else ""


# SQLSTATE classes that mean "the connection or the server went away": 08 connection
# exceptions, 57 operator intervention (admin shutdown, crash shutdown, cannot connect now).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57")


def _raised_while_connecting(exc: BaseException) -> bool:
    """True for an error raised inside asyncpg's connect: for example the FileNotFoundError of
    a unix socket that is gone while the (embedded) server restarts."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(os.path.join("asyncpg", "connect_utils.py")):
            return True
        tb = tb.tb_next
    return False


def database_unreachable(exc: BaseException) -> bool:
    """True when an exception (or one it was raised from) says the database is out of reach,
    as opposed to a query the database refused."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, PoolTimeout):
            return True  # no pooled connection came free in time: the database is too slow
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES):
            return True
        name = type(current).__name__
        if (
            isinstance(current, ConnectionError | TimeoutError)
            or (isinstance(current, OSError) and _raised_while_connecting(current))
            or name == "ConnectionDoesNotExistError"
            # asyncpg's own state for a connection the server dropped mid-operation (seen when
            # a pool resets it after pg_terminate_backend): that connection is gone.
            or name == "InternalClientError"
            or (name == "InterfaceError" and "closed" in str(current))
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc, request)


def _message(err: dict[str, Any]) -> str:
    """A validation error's message; for a body that is not JSON, with what the parser said
    (jsonbody.loads says which member is duplicated, which constant is not a number)."""
    message = str(err.get("msg", ""))
    reason = (err.get("ctx") or {}).get("error")
    if err.get("type") == "json_invalid" and reason:
        message = f"{message}: {reason}"
    return message


def _only_the_idempotency_key_is_missing(errors: list[dict[str, Any]]) -> bool:
    return (
        len(errors) == 1
        and errors[0].get("type") == "missing"
        and [str(part).lower() for part in errors[0].get("loc", ())]
        == ["header", "idempotency-key"]
    )


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _only_the_idempotency_key_is_missing(list(exc.errors())):
        # A write that requires the key (a trade): the request is otherwise well formed, and
        # the missing key has a code of its own.
        return problem_response(
            IdempotencyKeyRequired(
                "Send an Idempotency-Key header (a UUID) so that a retry is never booked twice"
            ),
            request,
        )
    errors = [
        {
            "location": [_jsonable(str(part)) for part in err.get("loc", ())],
            "message": _message(err),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    where, message = "", "invalid"
    if errors:
        where = ".".join(str(part) for part in errors[0]["location"])
        message = str(errors[0]["message"])
    problem = ValidationProblem(_jsonable(f"{where}: {message}" if where else message))
    problem.fields["errors"] = _jsonable(errors)
    return problem_response(problem, request)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method the request's path answers. Starlette's own `Allow` names only the methods
    of the first route that matched the path, while a path often has several routes (the GET
    and the POST of a collection)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes)
    ]  # fmt: skip


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    problem: ProblemError
    if exc.status_code == 400:
        # FastAPI's body parser: a body it could not even decode (for example JSON nested
        # deeper than the parser allows). The client sent malformed input.
        problem = ValidationProblem(f"body: {exc.detail}")
    elif exc.status_code == 404:
        problem = NotFound("No such endpoint")
    elif exc.status_code == 405:
        problem = MethodNotAllowed()
        problem.headers["Allow"] = ", ".join(_allowed_methods(request))
    elif exc.status_code == 413:
        problem = PayloadTooLarge()
    else:
        problem = ProblemError(str(exc.detail))
        problem.status = exc.status_code  # type: ignore[misc]
    return problem_response(problem, request)


async def _on_infrastructure(request: Request, exc: Exception) -> Response:
    # Registered for DBAPIError, OSError and UnicodeError: specific classes are answered
    # here, while a handler for plain Exception runs in Starlette's outermost layer, which
    # re-raises.
    if isinstance(exc, UnicodeError) or _sqlstate(exc).startswith(DATA_EXCEPTION):
        # A value from the path or query that the database cannot hold or read (a NUL, an
        # unencodable character, a number out of range): the client's input is malformed.
        return problem_response(
            ValidationProblem("A value in the request cannot be stored or compared"), request
        )
    if database_unreachable(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    type(exc).__name__)  # fmt: skip
        return problem_response(DatabaseUnavailable(), request)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(InternalError(), request)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):
        # The client went away (or the body cap answered 413 already): nobody to answer.
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return problem_response(ValidationProblem("The client disconnected"), request)
    # Never echo internals to the client; the traceback goes to the log only.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(InternalError(), request)


# Errors of the database, the network or the encoding, answered by _on_infrastructure. The trade
# write path talks to asyncpg directly: its errors arrive unwrapped.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    UnicodeError,
)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for infrastructure in INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(infrastructure, _on_infrastructure)
    app.add_exception_handler(Exception, _on_unexpected)


async def exception_response(request: Request, exc: Exception) -> Response:
    """The answer the handlers above give to an exception raised by a route's own code, for
    code that runs outside the framework's routing (the trade lane, trades/lane.py)."""
    if isinstance(exc, ProblemError):
        return await _on_problem(request, exc)
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return await _on_infrastructure(request, exc)
    return await _on_unexpected(request, exc)
