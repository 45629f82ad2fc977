"""What an operator runs the service with: rate limits, metrics, logs, and honest 503s."""

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mutualcredit.app import create_app
from mutualcredit.config import Settings
from mutualcredit.errors import database_unreachable
from mutualcredit.observability import JsonFormatter
from mutualcredit.ratelimit import RateLimiter
from tests.helpers import Api, assert_problem, auth


@pytest.fixture
async def strict_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app on the same database with a tight rate limit: 3 requests, then 1 per second."""
    settings = Settings(database_url=database_url, rate_limit_per_second=1, rate_limit_burst=3)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_a_key_over_its_rate_gets_429_with_retry_after(
    api: Api, strict_client: httpx.AsyncClient
) -> None:
    net = await api.network()
    other = await api.network()
    codes = [
        (await strict_client.get(net.base, headers=auth(net.operator))).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    r = await strict_client.get(net.base, headers=auth(net.operator))
    body = assert_problem(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "1"
    assert body["retry_after"] == 1
    # The limit is per key: another key is unaffected.
    assert (await strict_client.get(other.base, headers=auth(other.operator))).status_code == 200


def test_the_token_bucket_refills_at_its_rate() -> None:
    limiter = RateLimiter(rate=2, burst=2)
    limiter.check("k", now=0.0)
    limiter.check("k", now=0.0)
    with pytest.raises(Exception, match="Slow down"):
        limiter.check("k", now=0.1)
    limiter.check("k", now=0.6)  # half a second at 2/s gave back one token


async def test_metrics_count_requests_and_trades(api: Api, client: httpx.AsyncClient) -> None:
    net = await api.network()
    await api.account(net, "a")
    await api.account(net, "b")
    await api.pay(net, "a", "b", 1)
    await api.pay(net, "a", "b", 10**9)  # refused: credit limit
    text = (await client.get("/metrics")).text
    assert 'mutualcredit_trades_total{code="",outcome="created"}' in text
    assert 'mutualcredit_trades_total{code="credit_limit_exceeded",outcome="rejected"}' in text
    assert (
        'mutualcredit_http_requests_total{method="POST",'
        'route="/v1/networks/{network}/trades",status="201"}'
    ) in text
    assert "mutualcredit_http_request_duration_seconds_bucket" in text
    assert "mutualcredit_db_pool_checked_out" in text
    # Route templates, never tenant names, in labels.
    assert net.code not in text


async def test_every_log_line_is_json_with_the_request_id_and_no_secret(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    net = await api.network()
    with caplog.at_level(logging.INFO, logger="mutualcredit.access"):
        await api.client.get(
            f"{net.base}/accounts/ghost",
            headers={**auth(net.operator), "X-Request-Id": "trace-42"},
        )
    records = [r for r in caplog.records if r.name == "mutualcredit.access"]
    assert records
    line = JsonFormatter().format(records[-1])
    assert '"status": 404' in line
    assert '"key_id": "' + net.operator.split("_")[1] + '"' in line
    secret = net.operator.split("_", 2)[2]
    assert all(secret not in JsonFormatter().format(r) for r in caplog.records)


async def test_an_unreachable_database_is_a_retryable_503(app: FastAPI) -> None:
    # Nothing listens on port 1: every request that needs the database finds it unreachable.
    broken = create_app(Settings(database_url="postgresql://postgres@127.0.0.1:1/none"))
    async with broken.router.lifespan_context(broken):
        transport = httpx.ASGITransport(app=broken)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/v1/me", headers=auth("mc_0123456789abcdef_x"))
            assert_problem(r, 503, "database_unavailable")
            assert r.headers["Retry-After"] == "1"
            assert (await client.get("/healthz")).status_code == 200
            assert_problem(await client.get("/readyz"), 503, "service_unavailable")


async def test_a_missing_unix_socket_is_a_retryable_503(tmp_path: Path) -> None:
    # The embedded PostgreSQL listens on a unix socket, which is gone while it restarts:
    # connecting raises FileNotFoundError, which must read as "unreachable", not as a bug.
    url = f"postgresql://postgres@/none?host={tmp_path / 'no-server-here'}"
    broken = create_app(Settings(database_url=url))
    async with broken.router.lifespan_context(broken):
        transport = httpx.ASGITransport(app=broken)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/v1/me", headers=auth("mc_0123456789abcdef_x"))
            assert_problem(r, 503, "database_unavailable")
            r = await client.post(
                "/v1/networks/any/trades",
                json={"payer": "a", "payee": "b", "amount": 1},
                headers={**auth("mc_0123456789abcdef_x"), "Idempotency-Key": "k1"},
            )
            assert_problem(r, 503, "database_unavailable")


def test_refusals_are_not_mistaken_for_an_unreachable_database() -> None:
    assert database_unreachable(ConnectionRefusedError())
    assert not database_unreachable(ValueError("a bug"))
    # A missing file elsewhere (not while connecting to the database) is a bug, not an outage.
    assert not database_unreachable(FileNotFoundError(2, "No such file or directory"))
