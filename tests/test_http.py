"""HTTP edges: every error is problem+json, bodies are capped, health answers."""

import httpx

from mutualcredit import migrate
from tests.helpers import Api, assert_problem, auth


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    # The newest migration: the one the code was written for.
    assert ready["schema_revision"] == migrate.head_revision() == "0011"


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing"), 404, "not_found")
    assert_problem(await client.delete("/v1/networks"), 405, "method_not_allowed")


async def test_oversized_bodies_are_refused_before_anything_is_written(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    big = {"payer": "a", "payee": "b", "amount": 1, "description": "x" * 70_000}
    headers = {**auth(net.operator), "Idempotency-Key": "big"}
    r = await api.client.post(f"{net.base}/trades", json=big, headers=headers)
    assert_problem(r, 413, "payload_too_large")

    async def chunks() -> object:
        for _ in range(100):
            yield b" " * 1000

    # No Content-Length: the cap is counted while the body streams in.
    r = await api.client.post(
        f"{net.base}/trades",
        content=chunks(),  # type: ignore[arg-type]
        headers={**headers, "content-type": "application/json"},
    )
    assert_problem(r, 413, "payload_too_large")
    assert await api.balances(net) == {"a": 0, "b": 0}


async def test_deeply_nested_metadata_is_refused_cleanly(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    nested = "[" * 5000 + "]" * 5000
    raw = f'{{"payer": "a", "payee": "b", "amount": 1, "metadata": {{"x": {nested}}}}}'
    headers = {**auth(net.operator), "Idempotency-Key": "deep", "content-type": "application/json"}
    r = await api.client.post(f"{net.base}/trades", content=raw, headers=headers)
    assert r.status_code in (413, 422)
    assert r.headers["content-type"] == "application/problem+json"
    r = await api.pay(net, "a", "b", 1, metadata={"blob": "x" * 5000})
    assert_problem(r, 422, "validation_error")
    assert await api.balances(net) == {"a": 0, "b": 0}


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-Id": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32


async def test_text_the_database_cannot_store_is_a_422_never_a_500(api: Api) -> None:
    """Found by the fuzzer: NUL characters and lone surrogates, in values and in keys."""
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    headers = {**auth(net.operator), "content-type": "application/json"}
    bodies = [
        '{"payer": "a", "payee": "b", "amount": 1, "description": "nul \\u0000 here"}',
        '{"payer": "a", "payee": "b", "amount": 1, "external_ref": "\\ud800"}',
        '{"payer": "a", "payee": "b", "amount": 1, "metadata": {"k": ["\\u0000"]}}',
        '{"payer": "a", "payee": "b", "amount": 1, "metadata": {"\\udc00": 1}}',
        '{"payer": "a", "payee": "b", "amount": 1, "\\udc00": 1}',
        '{"payer": "a", "payee": "b", "amount": 1, "metadata": {"n": 52034931785387303609030}}',
    ]
    for n, body in enumerate(bodies):
        r = await api.client.post(
            f"{net.base}/trades", content=body, headers={**headers, "Idempotency-Key": f"k{n}"}
        )
        assert_problem(r, 422, "validation_error")
    # In the path, where no schema can look: the database's refusal becomes a 422 too.
    r = await api.client.get(f"{net.base}/accounts/a%00b", headers=auth(net.operator))
    assert_problem(r, 422, "validation_error")
    assert await api.balances(net) == {"a": 0, "b": 0}


async def test_abusive_headers_get_a_clear_4xx_and_write_nothing(api: Api) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    body = {"payer": "a", "payee": "b", "amount": 1}
    url = f"{net.base}/trades"
    for key in ("k" * 201, "tab\there", "new\u00e9".encode("latin-1"), " "):
        raw = key if isinstance(key, bytes) else key.encode()
        headers = [(k.encode(), v.encode()) for k, v in auth(net.operator).items()]
        r = await api.client.post(url, json=body, headers=[*headers, (b"idempotency-key", raw)])
        assert_problem(r, 422, "validation_error")
    r = await api.client.post(
        url, json=body, headers={"Authorization": "Bearer " + "x" * 20_000, "Idempotency-Key": "k"}
    )
    assert_problem(r, 401, "unauthorized")
    r = await api.client.post(
        url,
        content=b"{}",
        headers={**auth(net.operator), "Content-Length": "abc", "Idempotency-Key": "k"},
    )
    assert_problem(r, 422, "validation_error")
    # A request id that is too long or not ASCII is replaced, never echoed.
    r = await api.client.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert len(r.headers["x-request-id"]) == 32
    assert await api.balances(net) == {"a": 0, "b": 0}
