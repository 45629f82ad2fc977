"""The OpenAPI document: the app's own, valid, and complete enough for a generator to build a
working client from it with no hand edits (tests/test_generated_client.py builds one).

Each operation has a readable unique id, a description, its security (a bearer key, or the
node-to-node signature headers, or nothing for the probes), and the problems it answers as
`application/problem+json`, each with its stable codes. tests/answers.py checks the statuses
and codes against every answer the test suite receives.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from mutualcredit.apidoc import operations
from mutualcredit.federation import crypto
from mutualcredit.openapi import render
from tests.answers import AnswerLog

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
SPEC: dict[str, Any] = json.loads(render())
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
]
PROBES = {"/healthz", "/readyz"}
PEER_PREFIX = "/federation/v1/"
ids = [f"{method} {path}" for method, path, _ in OPERATIONS]


def test_the_committed_openapi_document_matches_the_app() -> None:
    assert json.loads(COMMITTED.read_text()) == SPEC, (
        "openapi/openapi.json is stale: run `mutualcredit openapi --output openapi/openapi.json`"
    )


def test_a_third_party_validator_accepts_the_document() -> None:
    # openapi-spec-validator checks the document against the OpenAPI 3.1 schema and its rules
    # (unique operation ids, resolvable references, path parameters declared).
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)


def test_operation_ids_are_the_endpoint_names_unique_and_readable(app: FastAPI) -> None:
    names = {
        (method, route.path_format): route.name for method, route in operations(app)
    }  # fmt: skip
    found = [operation["operationId"] for _, _, operation in OPERATIONS]
    assert len(found) == len(set(found)) == len(OPERATIONS)
    for method, path, operation in OPERATIONS:
        assert operation["operationId"] == names[(method, path)]
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation["operationId"]), operation
    assert {"create_trade", "get_account", "agree_link", "deliver_transfer"} <= set(found)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=ids)
def test_every_operation_has_a_summary_and_a_description(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    assert operation.get("summary", "").strip(), (method, path)
    description = operation.get("description", "").strip()
    # Who may call it and what it does: at least a sentence or two, not a placeholder.
    assert len(description) >= 60, (method, path, description)


def test_the_description_check_fails_for_an_operation_without_one(app: FastAPI) -> None:
    from fastapi import APIRouter

    from mutualcredit.apidoc import describe

    bare = FastAPI()
    router = APIRouter()

    @router.get("/undocumented", summary="Nothing more")
    async def undocumented() -> dict[str, str]:
        return {}

    bare.include_router(router)
    describe(bare)
    (operation,) = bare.openapi()["paths"]["/undocumented"].values()
    with pytest.raises(AssertionError):
        test_every_operation_has_a_summary_and_a_description("GET", "/undocumented", operation)


def test_a_bearer_key_is_declared_on_every_operation_that_needs_one() -> None:
    scheme = SPEC["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "security" not in SPEC  # no global default: each operation says its own
    for method, path, operation in OPERATIONS:
        if path.startswith("/v1/"):
            assert operation["security"] == [{"apiKey": []}], (method, path)
        else:
            assert "security" not in operation, (method, path)


def test_the_node_to_node_operations_document_their_signature() -> None:
    signed = [(m, p, o) for m, p, o in OPERATIONS if p.startswith(PEER_PREFIX)]
    assert len(signed) == 7
    for method, path, operation in signed:
        headers = {
            p["name"].lower(): p for p in operation.get("parameters", []) if p["in"] == "header"
        }
        if path.endswith("/descriptor"):  # public: no signature
            assert not headers.keys() & set(crypto.SIGNED_HEADERS), path
            assert "401" not in operation["responses"]
            continue
        assert set(crypto.SIGNED_HEADERS) <= headers.keys(), (method, path)
        assert all(headers[name]["required"] for name in crypto.SIGNED_HEADERS)
        assert all(headers[name]["description"] for name in crypto.SIGNED_HEADERS)
        unauthorized = operation["responses"]["401"]["content"]["application/problem+json"]
        assert {"peer_signature_missing", "peer_signature_invalid", "peer_unknown"} <= set(
            unauthorized["examples"]
        )


def test_a_trade_requires_an_idempotency_key_and_other_writes_accept_one() -> None:
    optional = 0
    for method, path, operation in OPERATIONS:
        for parameter in operation.get("parameters", []):
            if parameter["name"] != "Idempotency-Key":
                continue
            if (method, path) == ("POST", "/v1/networks/{network}/trades"):
                assert parameter["required"] is True
                assert parameter["in"] == "header"
            else:
                assert not parameter.get("required", False), (method, path)
                optional += 1
    assert optional >= 20


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=ids)
def test_every_problem_is_problem_json_with_its_codes(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        # Only problem+json: the service never answers an error as plain JSON.
        assert list(response["content"]) == ["application/problem+json"], (method, path, status)
        media = response["content"]["application/problem+json"]
        assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert media["examples"], (method, path, status)
        for code, example in media["examples"].items():
            assert example["value"]["code"] == code
            assert example["value"]["status"] == int(status)
            assert f"`{code}`" in response["description"], (method, path, status, code)


def test_the_problem_schema_documents_its_stable_code() -> None:
    problem = SPEC["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail"}
    assert "stable" in problem["properties"]["code"]["description"]
    assert problem.get("additionalProperties", True) is not False  # refusals add numbers
    assert "HTTPValidationError" not in SPEC["components"]["schemas"]


def _statuses(method: str, path: str) -> set[str]:
    return set(SPEC["paths"][path][method.lower()]["responses"])


def _codes(method: str, path: str, status: str) -> set[str]:
    response = SPEC["paths"][path][method.lower()]["responses"][status]
    return set(response["content"]["application/problem+json"]["examples"])


def test_each_operation_lists_the_statuses_it_answers() -> None:
    # Not one set for all: the operations differ by what they can answer.
    assert len({frozenset(_statuses(m, p)) for m, p, _ in OPERATIONS}) >= 10
    key_operations = [(m, p) for m, p, _ in OPERATIONS if p.startswith("/v1/")]
    for method, path in key_operations:
        # A key, so: 401 for a bad one, 429 from its rate limit; the database, so 503.
        assert {"401", "429", "503"} <= _statuses(method, path), (method, path)
    for method, path, _ in OPERATIONS:
        if not path.startswith("/v1/"):
            assert "429" not in _statuses(method, path), (method, path)
        if method == "GET":
            assert "413" not in _statuses(method, path), (method, path)
    for method, path, _ in OPERATIONS:
        # The server answers these for any request, before a route runs (server.py).
        assert {"408", "431", "503"} <= _statuses(method, path), (method, path)
    assert _statuses("GET", "/healthz") == {"200", "408", "431", "503"}
    assert _statuses("GET", "/readyz") == {"200", "408", "431", "503"}
    assert _codes("GET", "/healthz", "503") == {"server_busy"}  # it asks no database
    assert _codes("GET", "/readyz", "503") == {"server_busy", "service_unavailable"}
    # Any key may ask who it is: no 403; no network in the path: no 404.
    assert {"403", "404"}.isdisjoint(_statuses("GET", "/v1/me"))
    trade = _statuses("POST", "/v1/networks/{network}/trades")
    assert {"201", "202", "403", "404", "409", "413", "422"} <= trade
    # The operator's calls to a peer answer 502 when it does not; nothing else calls out.
    calling_out = {
        ("POST", "/v1/networks/{network}/federation/links/{peer}/agree"),
        ("GET", "/v1/networks/{network}/federation/links/{peer}/reconcile"),
        ("POST", "/v1/networks/{network}/federation/links/{peer}/checkpoints"),
    }
    assert {(m, p) for m, p, _ in OPERATIONS if "502" in _statuses(m, p)} == calling_out


def test_the_codes_of_a_trade_refusal_are_listed_under_their_statuses() -> None:
    responses = SPEC["paths"]["/v1/networks/{network}/trades"]["post"]["responses"]

    def codes(status: str) -> set[str]:
        return _codes("POST", "/v1/networks/{network}/trades", status)

    assert {"credit_limit_exceeded", "balance_max_exceeded", "idempotency_conflict"} <= codes("409")
    assert {"no_route", "link_not_active", "transfer_refused"} <= codes("409")
    assert {"idempotency_key_required", "same_account", "validation_error"} <= codes("422")
    assert {"amount_too_small", "amount_too_large", "invalid_address"} <= codes("422")
    assert codes("503") == {"database_unavailable", "server_busy"}
    assert "Retry-After" in responses["429"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


async def test_an_answer_the_document_does_not_declare_is_caught(app: FastAPI) -> None:
    # The check every test session ends with (tests/answers.py), shown to fail: a code and a
    # status the document does not list for the operation.
    log = AnswerLog(app)
    log.answers[("GET", "/v1/me")].update({(200, None), (401, "unauthorized")})
    assert log.undeclared(app.openapi()) == {}
    log.answers[("GET", "/v1/me")].update({(409, "credit_limit_exceeded"), (401, "peer_unknown")})
    assert log.undeclared(app.openapi()) == {
        "GET /v1/me": [(401, "peer_unknown"), (409, "credit_limit_exceeded")]
    }
