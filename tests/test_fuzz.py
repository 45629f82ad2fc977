"""Bad input, found by a machine: property-based fuzzing of every operation in the committed
openapi/openapi.json (schemathesis), authenticated, against a live service process.

For every generated request, valid by the schema or deliberately not: no 5xx, responses match
the document (a status it lists for the operation, its content type and its schema), and every
error is application/problem+json with a stable code. Path parameters
are pinned to real resources so that the fuzzer reaches the ledger instead of 404s.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mutualcredit.auth import service as keys
from mutualcredit.auth.models import Role
from mutualcredit.db import create_engine, make_sessionmaker

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(OPENAPI)


def _operation(
    result: Ok[schemathesis.APIOperation[Any, Any, Any, Any]] | Err[InvalidSchema],
) -> schemathesis.APIOperation[Any, Any, Any, Any]:
    # An operation the document cannot describe fails the test here, rather than go unfuzzed.
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


OPERATIONS = [_operation(result) for result in SCHEMA.get_all_operations()]
# Examples per operation and mode; FUZZ_SCALE=10 digs ten times deeper, on demand.
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 12 * SCALE, GenerationMode.NEGATIVE: 8 * SCALE}


@dataclass
class Target:
    base: str
    token: str
    params: dict[str, str]


async def _platform_key(url: str) -> str:
    engine = create_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine).begin() as session:
            _, token = await keys.create_key(session, role=Role.platform, label="fuzz")
            return token
    finally:
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def target(database_url: str) -> Iterator[Target]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
    env.update(
        MUTUALCREDIT_DATABASE_URL=database_url,
        MUTUALCREDIT_RATE_LIMIT_PER_SECOND="0",
        MUTUALCREDIT_LOG_LEVEL="warning",
    )
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            "-m",
            "mutualcredit.cli",
            "serve",
            "--no-migrate",
            "--no-demo",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        platform = asyncio.run(_platform_key(database_url))
        yield _world(base, platform)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _world(base: str, platform: str) -> Target:
    code = f"fuzz-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {platform}"}) as c:
        network = {"code": code, "name": "fuzz", "unit_name": "u", "unit_symbol": "u", "scale": 2}
        c.post("/v1/networks", json={**network, "default_credit_limit": 10_000}).raise_for_status()
        net = f"/v1/networks/{code}"
        token = c.post(f"{net}/keys", json={"role": "operator"}).json()["token"]
        for account in ("a", "b"):
            c.post(f"{net}/accounts", json={"code": account}).raise_for_status()
        spare = c.post(f"{net}/keys", json={"role": "member", "account": "b"}).json()["key_id"]
        trade = c.post(f"{net}/trades", json={"payer": "a", "payee": "b", "amount": 5,
                                               "pending": True},
                       headers={"Idempotency-Key": "fuzz-hold"}).json()["id"]  # fmt: skip
        request = c.post(f"{net}/requests", json={"payer": "a", "payee": "b", "amount": 1})
    params = {
        "network": code,
        "account": "a",
        "payee": "b",
        "trade_id": trade,
        "request_id": request.json()["id"],
        "key_id": spare,
    }
    return Target(base=base, token=token, params=params)


def _problem_check(response: Response) -> None:
    status = response.status_code
    if status >= 400:
        # schemathesis keeps every value of a header, as a list.
        assert response.headers["content-type"] == ["application/problem+json"], status
        body = response.json()
        assert isinstance(body.get("code"), str), body
        assert body["status"] == status, body


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_fuzzing_finds_no_server_error_and_only_problems(
    target: Target, operation: schemathesis.APIOperation[Any, Any, Any, Any], mode: GenerationMode
) -> None:
    names = {p.name for p in operation.path_parameters}
    strategy = operation.as_strategy(
        generation_mode=mode,
        path_parameters={k: v for k, v in target.params.items() if k in names},
    )

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case[Any]) -> None:
        headers = {"Authorization": f"Bearer {target.token}"}
        # A long poll waits by design, up to 30 s when no event comes: a valid `wait` is cut
        # to 1 s, well inside the call's timeout (an invalid one is kept, to be refused).
        wait = (case.query or {}).get("wait")
        if isinstance(wait, int) and not isinstance(wait, bool) and 1 < wait <= 30:
            case.query["wait"] = 1
        response = case.call(base_url=target.base, headers=headers, timeout=10)
        # The answer is one the document lists for the operation (its status, its content
        # type: problem+json for a problem) and has the declared shape.
        checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
        # The world's federation link points at a peer that is not running: a 502
        # peer_unreachable is the documented answer there, not a server error.
        if not (response.status_code == 502 and b"peer_unreachable" in response.content):
            checks.insert(0, not_a_server_error)
        case.validate_response(response, checks=checks, headers=headers)
        _problem_check(response)

    try:
        check()
    except Unsatisfiable:
        # An operation without parameters or body has nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE
        pytest.skip("no input to make invalid")
