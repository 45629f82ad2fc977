"""The API description: what the OpenAPI document says of each operation beyond what FastAPI
derives from its signature, and the documentation pages that show it.

The document is written for two readers: a person (the /docs and /redoc pages, served from
this process with no outside host involved) and a client generator, which must turn it into a
working client with no hand edits. So every operation has:

- an operation id, the endpoint function's name (`create_trade`), set once for the app;
- a description, the endpoint's docstring: who may call it, what it does, its refusals;
- its security: the bearer API key where the operation authenticates a key, the node-to-node
  signature headers where a peer network signs the request, nothing on the probes;
- the problems it can answer, each status as `application/problem+json` with the `Problem`
  schema and one named example per stable `code`.

The problems are derived where the operation's shape implies them, and declared by the
endpoint (`answers`) where only its work does:

| status | code                          | derived from                                          |
|--------|-------------------------------|-------------------------------------------------------|
| 401    | `unauthorized`                | the operation authenticates an API key                |
| 403    | `forbidden`                   | the same, unless any valid key may call it            |
| 404    | `network_not_found`           | the same, with a `{network}` in the path              |
| 409    | `idempotency_conflict`        | an `Idempotency-Key` header                           |
| 413    | `payload_too_large`           | a request body                                        |
| 422    | `validation_error`            | any parameter or body                                 |
| 429    | `rate_limited`                | an API key (the rate limit is per key)                |
| 503    | `database_unavailable`        | every operation that reads the database               |
| 408    | `request_timeout`             | every operation: the server (server.py) answers these |
| 431    | `headers_too_large`           | before any route runs, for any request                |
| 503    | `server_busy`                 |                                                       |

Everything else (a ledger's refusal, a peer's 502, an account not found) is declared by the
endpoint with `@answers(...)`, or, for what an operation answers through a domain above its
own (federation, behind the trade route), by that domain with `also_answers`.
tests/answers.py holds every answer the test suite receives against the document, so an answer
the document does not declare fails the suite.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from mutualcredit.auth.dependencies import booking_principal, current_principal
from mutualcredit.errors import (
    PROBLEM_TYPE_BASE,
    DatabaseUnavailable,
    Forbidden,
    HeadersTooLarge,
    IdempotencyConflict,
    PayloadTooLarge,
    ProblemError,
    RateLimited,
    RequestTimeout,
    ServerBusy,
    Unauthorized,
    ValidationProblem,
)
from mutualcredit.networks.errors import NetworkNotFound
from mutualcredit.schemas import Problem

BEARER = "apiKey"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "mc_<key id>_<secret>",
        "description": (
            "An API key, as `Authorization: Bearer mc_...`. A platform key administers the "
            "deployment; an operator key runs one network; an auditor key reads one network; "
            "a member key acts for one account. Keys are made by `POST "
            "/v1/networks/{network}/keys` (or `mutualcredit create-key`) and shown once."
        ),
    }
}

# The first line of each problem response's description; the codes follow, one per line.
LEADS: dict[int, str] = {
    400: "The request cannot be served as it is.",
    401: "No valid credentials.",
    403: "The caller may not do this.",
    404: "Not found, or not visible to this caller.",
    408: "The request's headers or body did not arrive in time; the connection is closed.",
    409: "Refused: the request is valid, but the ledger's state does not allow it.",
    413: "The request body is larger than the service accepts.",
    422: "The request is malformed.",
    431: "The request line and headers are longer than the server reads.",
    429: "Too many requests with this key: retry after `Retry-After` seconds.",
    502: "A call to a peer network failed.",
    503: "The service cannot answer now: retry later (a write, with the same Idempotency-Key).",
}
# Headers a problem of that code carries.
PROBLEM_HEADERS: dict[str, dict[str, Any]] = {
    "unauthorized": {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: `Bearer`.",
            "schema": {"type": "string"},
        }
    },
    "rate_limited": {
        "Retry-After": {
            "description": "Seconds to wait before the next request with this key.",
            "schema": {"type": "integer"},
        }
    },
    "database_unavailable": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
    "server_busy": {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
}
# What the server itself (server.py) answers for any request, before a route runs: a head or
# body that does not arrive in time, a head too long, a worker full of connections or bodies.
SERVER_PROBLEMS: tuple[type[ProblemError], ...] = (RequestTimeout, HeadersTooLarge, ServerBusy)

_KEY_DEPENDENCIES = frozenset({current_principal, booking_principal})

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True)
class Answers:
    """What an endpoint answers beyond what its shape implies (see the module's docstring)."""

    problems: tuple[type[ProblemError], ...] = ()
    # Any valid API key may call it: no 403.
    any_key: bool = False
    # Node to node: the request is signed by the calling network with these headers (name:
    # meaning), and may be refused for its signature with these problems.
    signed: Mapping[str, str] = field(default_factory=dict)
    signature_problems: tuple[type[ProblemError], ...] = ()
    # It does not read the database (the liveness probe): no 503 database_unavailable.
    database: bool = True


_DECLARED: dict[Callable[..., Any], Answers] = {}
# Problems a domain above adds to another's operation, by operation id: federation, which the
# trade route hands a cross-network payee to through an interface (trades/cross_network.py),
# declares the refusals it answers there, as the route cannot name them.
_ADDED: dict[str, list[type[ProblemError]]] = defaultdict(list)


def answers(
    *problems: type[ProblemError],
    any_key: bool = False,
    signed: Mapping[str, str] | None = None,
    signature_problems: tuple[type[ProblemError], ...] = (),
    database: bool = True,
) -> Callable[[Endpoint], Endpoint]:
    """Declares what an endpoint can answer that its signature does not show: its refusals
    (each a ProblemError class, documented under its status with its code), and the facts
    the derived problems depend on. Put it under the route's decorator."""

    def declare(endpoint: Endpoint) -> Endpoint:
        _DECLARED[endpoint] = Answers(
            problems=problems,
            any_key=any_key,
            signed=dict(signed or {}),
            signature_problems=signature_problems,
            database=database,
        )
        return endpoint

    return declare


def also_answers(operation: str, *problems: type[ProblemError]) -> None:
    """Declares problems an operation answers through code of a domain above its own."""
    _ADDED[operation].extend(problems)


def operation_id(route: APIRoute) -> str:
    """The endpoint function's name: `create_trade`, the name a generated client's function
    gets. FastAPI warns of a duplicate when it builds the document, and a test refuses one."""
    return route.name


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def authenticates_key(route: APIRoute) -> bool:
    """Whether the operation authenticates an API key: the principal is one of its
    dependencies."""
    return any(call in _KEY_DEPENDENCIES for call in _calls(route.dependant))


def problems_of(route: APIRoute) -> dict[int, list[type[ProblemError]]]:
    """Every problem the operation can answer, by status, derived and declared."""
    declared = _DECLARED.get(route.endpoint, Answers())
    found: list[type[ProblemError]] = []
    key = authenticates_key(route)
    params = get_flat_params(route.dependant)
    has_body = route.body_field is not None or (
        bool(declared.signed) and bool((route.methods or set()) & {"POST", "PUT", "PATCH"})
    )
    if key:
        found.append(Unauthorized)
        if not declared.any_key:
            found.append(Forbidden)
        if "network" in route.param_convertors:
            found.append(NetworkNotFound)
        found.append(RateLimited)
    found.extend(declared.signature_problems)
    if any(p.alias.lower() == "idempotency-key" for p in params):
        found.append(IdempotencyConflict)
    if has_body:
        found.append(PayloadTooLarge)
    if params or has_body:
        found.append(ValidationProblem)
    if declared.database:
        found.append(DatabaseUnavailable)
    found.extend(declared.problems)
    found.extend(_ADDED.get(route.name, ()))
    found.extend(SERVER_PROBLEMS)
    by_status: dict[int, list[type[ProblemError]]] = defaultdict(list)
    for problem in found:
        if problem not in by_status[problem.status]:
            by_status[problem.status].append(problem)
    return dict(sorted(by_status.items()))


def _example(problem: type[ProblemError]) -> dict[str, Any]:
    return {
        "summary": problem.title,
        "value": {
            "type": PROBLEM_TYPE_BASE + problem.code,
            "title": problem.title,
            "status": problem.status,
            "code": problem.code,
            "detail": problem.title,
        },
    }


def problem_response(status: int, problems: list[type[ProblemError]]) -> dict[str, Any]:
    """One status's response: its codes in the description and as named examples."""
    lines = [LEADS.get(status, "A problem."), ""]
    lines += [f"- `{p.code}`: {p.title}" for p in problems]
    headers: dict[str, Any] = {}
    for problem in problems:
        headers.update(PROBLEM_HEADERS.get(problem.code, {}))
    response: dict[str, Any] = {
        "description": "\n".join(lines),
        "content": {
            "application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "examples": {p.code: _example(p) for p in problems},
            }
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _signature_parameters(signed: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "header",
            "required": True,
            "description": meaning,
            "schema": {"type": "string"},
        }
        for name, meaning in signed.items()
    ]


def operations(app: FastAPI) -> Iterator[tuple[str, RouteContext]]:
    """Each operation of the document: its method and its route, as included in the app."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            for method in sorted(context.methods or ()):
                yield method, context


def describe(app: FastAPI) -> None:
    """Makes the app's OpenAPI document complete each operation's description (its problems,
    its security or signature) and add the components they use. Called by create_app."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = default_openapi()
        for method, route in operations(app):
            route_like = cast(APIRoute, route)
            operation = document["paths"][route.path_format][method.lower()]
            declared = _DECLARED.get(route.endpoint, Answers()) if route.endpoint else Answers()
            # The statuses of success (a 202, a CSV body) stay as FastAPI wrote them from the
            # route; every problem is written here.
            responses = {
                status: response
                for status, response in operation["responses"].items()
                if int(status) < 400
            }
            for status, problems in problems_of(route_like).items():
                responses[str(status)] = problem_response(status, problems)
            operation["responses"] = responses
            if authenticates_key(route_like):
                operation["security"] = [{BEARER: []}]
            if declared.signed:
                operation.setdefault("parameters", []).extend(
                    _signature_parameters(declared.signed)
                )
        # A webhook's receiver answers the service, not a client: FastAPI's 422 for its body
        # means nothing there.
        for item in document.get("webhooks", {}).values():
            for operation in item.values():
                operation["responses"].pop("422", None)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        # FastAPI's own validation error, which the service never answers (a validation error
        # is a Problem with `errors`).
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components["securitySchemes"] = SECURITY_SCHEMES
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
