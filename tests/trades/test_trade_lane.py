"""The trade lane (trades/lane.py) answers exactly as the framework's route would, and hands on
every request it is not sure of, body and all."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send

from mutualcredit.app import create_app
from mutualcredit.config import Settings
from mutualcredit.trades.lane import TradeLane
from tests.helpers import Api, Net, auth

# Fields of a trade that differ between two bookings of the same request.
PER_BOOKING = ("id", "created_at", "resolved_at")


@pytest.fixture(scope="module")
async def framework_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The same application on the same database, with every trade request left to the
    framework's routing."""
    settings: Settings = app.state.settings
    application = create_app(settings, trade_lane=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def framework(framework_app: FastAPI, platform_token: str) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=framework_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client, platform_token)


def _comparable(response: httpx.Response, net: Net) -> dict[str, Any]:
    body = json.loads(response.text.replace(net.code, "NET"))
    if isinstance(body, dict):
        for name in PER_BOOKING:
            if name in body and response.status_code < 300:
                body[name] = type(body[name]).__name__
        if "created_by" in body:  # the role, and a key id of the scenario's own network
            body["created_by"] = body["created_by"].split(":")[0]
    headers = {
        name: response.headers.get(name)
        for name in ("content-type", "idempotent-replayed", "www-authenticate", "retry-after")
    }
    return {"status": response.status_code, "headers": headers, "body": body}


async def _scenario(api: Api) -> list[dict[str, Any]]:
    """The same requests against a fresh network: every kind of answer the route gives."""
    net = await api.network(default_credit_limit=100)
    await api.account(net, "a")
    await api.account(net, "b")
    await api.account(net, "capped", balance_max=5)
    member = await api.member_key(net, "a")
    trades = f"{net.base}/trades"
    later = "2099-01-01T00:00:00Z"
    answers = []

    async def post(
        body: Any, key: str | None = "k", token: str | None = None, **headers: str
    ) -> None:
        sent = {
            **auth(net.operator if token is None else token),
            "content-type": "application/json",
            **headers,
        }
        if key is not None:
            sent["Idempotency-Key"] = key
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = await api.client.post(trades, content=content, headers=sent)
        answers.append(_comparable(r, net))

    plain = {"payer": "a", "payee": "b", "amount": 7, "description": "bread", "metadata": {"n": 1}}
    await post(plain, key="k1")
    await post(plain, key="k1")  # a replay
    await post({**plain, "amount": 8}, key="k1")  # the key with another body
    await post({"payer": "a", "payee": "b", "amount": 10**6}, key="k2")  # credit limit
    await post({"payer": "a", "payee": "b", "amount": 10**6}, key="k2")  # the refusal replayed
    await post({"payer": "b", "payee": "capped", "amount": 6}, key="k3")  # balance max
    await post({"payer": "a", "payee": "nobody", "amount": 1}, key="k4")
    await post({"payer": "a", "payee": "a", "amount": 1}, key="k5")
    await post({"payer": "a", "payee": "b", "amount": 1, "expires_at": later}, key="k6")
    await post(
        {"payer": "a", "payee": "b", "amount": 2, "pending": True, "expires_at": later},
        key="k7",
        **{"content-type": "application/json; charset=utf-8"},
    )
    await post({"payer": "a", "payee": "b", "amount": 3}, key="k8", token=member)
    await post({"payer": "b", "payee": "a", "amount": 3}, key="k9", token=member)
    await post({"payer": "a", "payee": "b", "amount": 4}, key="k10", token=api.platform)
    await post(plain, key="k11", token="mc_nokey_nosecret")
    await post(plain, key="k12", token="")
    # Handed on: the framework answers these itself.
    await post(plain, key=None)
    await post({**plain, "amount": "7"}, key="k13")
    await post(b'{"payer": "a",', key="k14")
    await post(plain, key="k15", **{"content-type": "text/plain"})
    await post(plain, key="k16", **{"content-type": ""})
    await post({"payer": "a", "payee": "elsewhere/b", "amount": 1}, key="k17")
    r = await api.client.post(
        "/v1/networks/no-such-net/trades",
        json=plain,
        headers={**auth(net.operator), "Idempotency-Key": "k18"},
    )
    answers.append(_comparable(r, net))
    return answers


async def test_the_lane_answers_as_the_route_would(api: Api, framework: Api) -> None:
    through_lane = await _scenario(api)
    through_framework = await _scenario(framework)
    assert len(through_lane) == len(through_framework) == 22
    for n, (lane, route) in enumerate(zip(through_lane, through_framework, strict=True)):
        assert lane == route, f"request {n} differs: {lane} != {route}"
    # The scenario does cover every kind of answer (so the comparison above means something).
    outcomes = [(answer["status"], answer["body"].get("code")) for answer in through_lane]
    assert outcomes == [
        (201, None), (201, None), (409, "idempotency_conflict"), (409, "credit_limit_exceeded"),
        (409, "credit_limit_exceeded"), (409, "balance_max_exceeded"),
        (404, "account_not_found"), (422, "same_account"), (422, "validation_error"),
        (201, None), (201, None), (403, "forbidden"), (201, None), (401, "unauthorized"),
        (401, "unauthorized"),
        # handed on
        (422, "idempotency_key_required"), (422, "validation_error"), (422, "validation_error"),
        (422, "validation_error"), (422, "validation_error"), (409, "no_route"),
        (404, "network_not_found"),
    ]  # fmt: skip
    assert through_lane[1]["headers"]["idempotent-replayed"] == "true"
    assert through_lane[13]["headers"]["www-authenticate"] == 'Bearer realm="mutualcredit"'


class Inner:
    """Stands for the application behind the lane: records what it is handed, body and all."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


@pytest.fixture
async def lane(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, Inner]]:
    inner = Inner()
    wrapped = TradeLane(inner, max_bytes=2048)

    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it, for the lane's pools and limits
        await wrapped(scope, receive, send)

    transport = httpx.ASGITransport(app=entry)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, inner


async def test_the_lane_books_well_formed_trades_itself(
    api: Api, lane: tuple[httpx.AsyncClient, Inner]
) -> None:
    client, inner = lane
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    headers = {
        **auth(net.operator),
        "X-Request-Id": "trace-lane",
        "content-type": "application/json",
    }

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b'{"payer": "a", ', b'"payee": "b", ', b'"amount": 2}'):
            yield piece

    r = await client.post(
        f"{net.base}/trades", json={"payer": "a", "payee": "b", "amount": 3},
        headers={**headers, "Idempotency-Key": "one"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == "trace-lane"
    assert r.json()["amount"] == 3
    # A body that arrives in pieces, with no Content-Length.
    r = await client.post(
        f"{net.base}/trades",
        content=pieces(),
        headers={**headers, "Idempotency-Key": "two"},
    )
    assert r.status_code == 201, r.text
    # Refusals are the lane's own answers too.
    r = await client.post(
        f"{net.base}/trades", json={"payer": "a", "payee": "b", "amount": 10**9},
        headers={**headers, "Idempotency-Key": "three"},
    )  # fmt: skip
    assert r.status_code == 409
    assert r.json()["code"] == "credit_limit_exceeded"
    assert r.json()["instance"] == f"{net.base}/trades"
    assert inner.bodies == []
    assert await api.balances(net) == {"a": -5, "b": 5}


async def test_the_lane_hands_on_what_it_is_not_sure_of_with_the_body(
    api: Api, lane: tuple[httpx.AsyncClient, Inner]
) -> None:
    client, inner = lane
    net = await api.network()
    url = f"{net.base}/trades"
    good = json.dumps({"payer": "a", "payee": "b", "amount": 1}).encode()
    json_type = {"content-type": "application/json"}
    key = {**auth(net.operator), **json_type, "Idempotency-Key": str(uuid.uuid4())}
    sent: list[bytes] = []

    async def post(
        body: bytes, headers: dict[str, str] | list[tuple[str, str]], path: str = url
    ) -> None:
        r = await client.post(path, content=body, headers=headers)
        assert (r.status_code, r.text) == (299, "inner")
        sent.append(body)

    await post(good, {**auth(net.operator), **json_type})  # no Idempotency-Key
    await post(good, {**auth(net.operator), **json_type, "Idempotency-Key": "has space"})
    await post(good, {name: value for name, value in key.items() if name != "content-type"})
    await post(good, [*key.items(), ("Idempotency-Key", "second")])
    await post(good, {**key, "content-type": "application/x-www-form-urlencoded"})
    await post(b'{"payer": "a", "payee": "b", "amount": 1.0}', key)
    await post(b'{"payer": "a", "payee": "b", "amount": 1, "extra": 1}', key)
    await post(b'["a", "b", 1]', key)
    await post(b'{"payer": "a", "payee": "b", "amount": 1, "amount": NaN}', key)
    await post(b'{"payer": "a", "payee": "other-net/b", "amount": 1}', key)
    await post(b" " * 3000, key)  # over the cap
    await post(good, key, path=f"{url}/")  # not the route
    r = await client.get(url, headers=key)
    assert r.status_code == 299
    assert inner.bodies == [*sent, b""]
    assert await api.balances(net) == {}


async def test_a_key_over_its_rate_is_refused_by_the_lane_as_by_the_route(
    api: Api, app: FastAPI
) -> None:
    settings = app.state.settings.model_copy(
        update={"rate_limit_per_second": 1, "rate_limit_burst": 1}
    )
    answers = []
    for lane in (True, False):
        net = await api.network()
        await api.account(net, "a")
        await api.account(net, "b")
        strict = create_app(settings, trade_lane=lane)
        async with strict.router.lifespan_context(strict):
            transport = httpx.ASGITransport(app=strict)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for key in ("first", "second"):
                    r = await client.post(
                        f"{net.base}/trades", json={"payer": "a", "payee": "b", "amount": 1},
                        headers={**auth(net.operator), "Idempotency-Key": key},
                    )  # fmt: skip
                    answers.append(_comparable(r, net))
        assert await api.balances(net) == {"a": -1, "b": 1}
    assert answers[:2] == answers[2:]
    assert [answer["status"] for answer in answers[:2]] == [201, 429]
    assert answers[1]["headers"]["retry-after"] == "1"


def _unaccounted(application: FastAPI) -> list[str]:
    """What keeps the lane from answering trades as the application would: a middleware outside
    it (it would run for other requests only), or one inside it that it does not stand in for
    (trades the lane answers would skip it)."""
    # The outermost first; each a middleware class (user_middleware types them as factories).
    stack: list[type] = [cast(type, m.cls) for m in application.user_middleware]
    problems = [f"{cls.__name__} is outside the lane" for cls in stack[: stack.index(TradeLane)]]
    inside = stack[stack.index(TradeLane) + 1 :]
    problems += [
        f"the lane does not do the work of {cls.__name__}"
        for cls in inside
        if cls not in TradeLane.STANDS_IN_FOR
    ]
    problems += [
        f"the lane stands in for {cls.__name__}, which the application does not have"
        for cls in TradeLane.STANDS_IN_FOR
        if cls not in inside
    ]
    return problems


def test_the_lane_accounts_for_every_middleware_of_the_application(app: FastAPI) -> None:
    assert _unaccounted(create_app(app.state.settings)) == []

    # A middleware added later, as add_middleware adds it (outermost), or inside the lane.
    with_cors = create_app(app.state.settings)
    with_cors.add_middleware(CORSMiddleware, allow_origins=["*"])
    assert _unaccounted(with_cors) == ["CORSMiddleware is outside the lane"]
    with_gzip = create_app(app.state.settings)
    with_gzip.user_middleware.insert(1, Middleware(GZipMiddleware))
    assert _unaccounted(with_gzip) == ["the lane does not do the work of GZipMiddleware"]
