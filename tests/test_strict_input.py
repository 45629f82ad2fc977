"""A ledger never guesses: input that could mean two things is refused, for every operation.

Each test walks the application's own OpenAPI document, so an operation added later is covered
without anyone remembering to add it: every JSON body refuses a member named twice, NaN,
Infinity and numbers beyond a double; every boolean refuses 0, 1 and strings; every date-time
refuses numbers and numeric strings; every integer in a query string refuses what is not plain
decimal digits; every Idempotency-Key refuses to be sent twice; every path answers a method it
does not have with 405 and the methods it does have in `Allow`.
"""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import Api, Net, assert_problem, auth

# Operations whose body is read by the node-to-node protocol: a signed request, refused with 401
# before its body is parsed when it is not signed (tests/federation/test_security.py).
PEER_PREFIX = "/federation/"


def _operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if not path.startswith(PEER_PREFIX):
                yield method.upper(), path, operation


def _resolve(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema behind a $ref, or behind `anyOf: [$ref, null]` (an optional body)."""
    for option in schema.get("anyOf", []):
        if "$ref" in option:
            return _resolve(app, option)
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        resolved: dict[str, Any] = app.openapi()["components"]["schemas"][name]
        return resolved
    return schema


def _types(app: FastAPI, schema: dict[str, Any]) -> set[str]:
    """The JSON types (and `date-time`) a property schema admits, nulls aside."""
    found: set[str] = set()
    for option in [schema, *schema.get("anyOf", [])]:
        option = _resolve(app, option) if "$ref" in option else option
        if option.get("format") == "date-time":
            found.add("date-time")
        elif "type" in option and option["type"] != "null":
            found.add(option["type"])
    return found


def _url(net: Net, path: str) -> str:
    """The path with the test network and made-up ids: validation answers before any lookup."""
    return (
        path.replace("{network}", net.code)
        .replace("{account}", "alice")
        .replace("{payee}", "bob")
        .replace("{peer}", "nowhere")
        .replace("{key_id}", "0123456789abcdef")
        .replace("{trade_id}", str(uuid.uuid4()))
        .replace("{request_id}", str(uuid.uuid4()))
    )


def _body_operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, _resolve(app, op["requestBody"]["content"]["application/json"]["schema"]))
        for method, path, op in _operations(app)
        if "requestBody" in op
    ]


@pytest.fixture
async def net(api: Api) -> Net:
    net = await api.network()
    await api.account(net, "alice")
    await api.account(net, "bob")
    return net


def _headers(api: Api) -> dict[str, str]:
    return {
        **auth(api.platform),
        "content-type": "application/json",
        "Idempotency-Key": str(uuid.uuid4()),
    }


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"amount": 1, "amount": 7}', "'amount' appears more than once"),
        (b'{"metadata": {"a": 1, "a": 1}}', "'a' appears more than once"),
        (b'{"metadata": {"x": NaN}}', "NaN is not a JSON number"),
        (b'{"metadata": {"x": Infinity}}', "Infinity is not a JSON number"),
        (b'{"metadata": {"x": -Infinity}}', "-Infinity is not a JSON number"),
        (b'{"metadata": {"x": 1e400}}', "1e400 is out of range"),
        (b'{"description": "caf\xe9"}', "not valid UTF-8"),
    ],
)
async def test_every_json_body_refuses_what_it_would_have_to_guess(
    app: FastAPI, api: Api, net: Net, body: bytes, says: str
) -> None:
    operations = _body_operations(app)
    assert len(operations) > 20  # the walk found the document's operations
    for method, path, _ in operations:
        r = await api.client.request(method, _url(net, path), content=body, headers=_headers(api))
        problem = assert_problem(r, 422, "validation_error")
        assert says in problem["detail"], (method, path, problem)


async def test_nothing_is_booked_from_a_body_with_a_member_named_twice(api: Api, net: Net) -> None:
    # The trade lane reads trade bodies itself: the same parser refuses the same bodies there.
    r = await api.client.post(
        f"{net.base}/trades",
        content=b'{"payer": "alice", "payee": "bob", "amount": 1, "amount": 7}',
        headers=_headers(api),
    )
    assert_problem(r, 422, "validation_error")
    assert (await api.balances(net)) == {"alice": 0, "bob": 0}


_WRONG_BOOLEANS: list[Any] = [0, 1, "true", "yes", None]
_WRONG_MOMENTS: list[Any] = [1700000000, 0.5, "0.5", "1700000000", "2027-01-31", "2027-01-31T00:00"]


async def test_every_boolean_and_date_time_in_a_body_takes_only_its_own_type(
    app: FastAPI, api: Api, net: Net
) -> None:
    checked = 0
    for method, path, schema in _body_operations(app):
        for name, prop in schema.get("properties", {}).items():
            kinds = _types(app, prop)
            if kinds == {"boolean"}:
                wrong = _WRONG_BOOLEANS if name not in schema.get("required", []) else [0, "true"]
            elif kinds == {"date-time"}:
                wrong = _WRONG_MOMENTS
            else:
                continue
            for value in wrong:
                if value is None and "null" in str(prop):
                    continue  # null is this field's way of saying "none"
                r = await api.client.request(
                    method, _url(net, path), json={name: value}, headers=_headers(api)
                )
                problem = assert_problem(r, 422, "validation_error")
                locations = [e["location"] for e in problem["errors"]]
                assert ["body", name] in locations, (method, path, name, value, problem)
                checked += 1
    # pending, override_limits, dry_run, default_route (twice); expires_at (twice), until.
    assert checked >= 40


_WRONG_QUERY: dict[str, list[str]] = {
    "integer": ["1.0", "+1", " 1", "1_0", "0x10", "1e2", "ten"],
    "date-time": ["0.5", "1700000000", "2027-01-31", "2027-01-31T00:00", "tomorrow"],
}


async def test_every_number_and_date_time_in_a_query_takes_only_its_own_form(
    app: FastAPI, api: Api, net: Net
) -> None:
    checked = 0
    for method, path, operation in _operations(app):
        for param in operation.get("parameters", []):
            if param["in"] != "query":
                continue
            kinds = _types(app, param["schema"])
            for kind, values in _WRONG_QUERY.items():
                if kinds != {kind}:
                    continue
                for value in values:
                    r = await api.client.request(
                        method,
                        _url(net, path),
                        params={param["name"]: value},
                        headers=auth(api.platform),
                    )
                    problem = assert_problem(r, 422, "validation_error")
                    locations = [e["location"] for e in problem["errors"]]
                    assert ["query", param["name"]] in locations, (path, param["name"], value)
                    checked += 1
    assert checked >= 60


async def test_every_idempotency_key_is_sent_once(app: FastAPI, api: Api, net: Net) -> None:
    checked = 0
    for method, path, operation in _operations(app):
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        if "Idempotency-Key" not in names:
            continue
        headers = [
            ("authorization", f"Bearer {api.platform}"),
            ("content-type", "application/json"),
            ("idempotency-key", "first"),
            ("idempotency-key", "second"),
        ]
        r = await api.client.request(method, _url(net, path), json={}, headers=headers)
        problem = assert_problem(r, 422, "validation_error")
        assert "Idempotency-Key" in problem["detail"], (method, path, problem)
        checked += 1
    assert checked >= 20


async def test_every_path_names_its_methods_when_asked_for_another(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    net = Net(code="any", operator="")
    for path, item in app.openapi()["paths"].items():
        declared = {method.upper() for method in item}
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            if method in declared:
                continue
            r = await client.request(method, _url(net, path))
            if method == "HEAD":
                assert r.status_code == 405  # and no body, as HEAD has none
            else:
                assert_problem(r, 405, "method_not_allowed")
            assert set(r.headers["allow"].split(", ")) == declared, (method, path)


async def test_a_cross_network_trade_refuses_pending_and_expires_at_as_malformed(
    api: Api, net: Net
) -> None:
    # The protocol holds and settles a cross-network trade itself: a request that asks for a
    # hold of its own is malformed (422, as the README says), refused before any link is
    # looked up (the fuzzing test's status check found it answering an undeclared 400).
    for extra in ({"pending": True}, {"expires_at": "2099-01-01T00:00:00Z"}):
        r = await api.pay(net, "alice", "elsewhere/bob", 5, **extra)
        problem = assert_problem(r, 422, "validation_error")
        assert "omit pending and expires_at" in problem["detail"]
