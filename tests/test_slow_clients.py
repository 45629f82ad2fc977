"""Slow and stalled clients cannot hold the service: every phase of a request has a deadline,
each worker bounds its connections and the body bytes it holds, and nobody without a key gets a
body read (server.py, auth/gate.py).

Through a real `mutualcredit serve` process, with raw sockets, as an attacker would: half-sent
heads, stalled bodies, endless chunked bodies, clients that never read their answer, and many
of them at once, while a normal client keeps trading. The deadlines are set short here; the
figures at the defaults are measured by bench/slow_clients.py.
"""

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.service import ServiceProcess, read_until_closed, trade, world

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
SEND_TIMEOUT = 2.0
MAX_CONNECTIONS = 300
MAX_HEADER_BYTES = 8192
MAX_BUFFERED_BYTES = 262_144
# How late a cut may come: the timer's own tick, a busy shared machine.
SLACK = 1.0


@pytest.fixture(scope="module")
def service(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("slow-clients") / "service.log"
    with ServiceProcess(
        database_url,
        log,
        header_timeout_seconds=str(HEADER_TIMEOUT),
        body_timeout_seconds=str(BODY_TIMEOUT),
        send_timeout_seconds=str(SEND_TIMEOUT),
        max_connections=str(MAX_CONNECTIONS),
        max_header_bytes=str(MAX_HEADER_BYTES),
        max_buffered_bytes=str(MAX_BUFFERED_BYTES),
    ) as process:
        yield process


@pytest.fixture(scope="module")
def net(service: ServiceProcess, platform_token: str) -> dict[str, Any]:
    return world(service.base, platform_token)


async def _open(service: ServiceProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", service.port)


def _head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _problem(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/problem+json" in head.lower(), head
    return status, json.loads(body)


async def _cut_after(
    reader: asyncio.StreamReader, started: float, deadline: float
) -> tuple[bytes, float]:
    """What the server said before closing, and how long after `started` it closed; the close
    must come at the deadline, not before it and not much after."""
    answer = await read_until_closed(reader, within=deadline + SLACK + 5)
    elapsed = time.monotonic() - started
    assert deadline - 0.1 <= elapsed <= deadline + SLACK, elapsed
    return answer, elapsed


async def test_a_connection_that_sends_no_head_or_half_a_head_is_cut(
    service: ServiceProcess,
) -> None:
    idle_reader, idle = await _open(service)
    idle_started = time.monotonic()
    half_reader, half = await _open(service)
    half.write(b"POST /v1/networks/x/trades HTTP/1.1\r\nHost: test\r\nAuthoriz")
    half_started = time.monotonic()
    drip_reader, drip = await _open(service)
    drip_started = time.monotonic()

    async def dripping() -> None:
        # One byte at a time, each well within any per-read timeout: only a deadline for the
        # whole head stops it.
        for byte in b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 1000:
            drip.write(bytes([byte]))
            await asyncio.sleep(0.05)

    dripper = asyncio.create_task(dripping())
    try:
        answer, _ = await _cut_after(idle_reader, idle_started, HEADER_TIMEOUT)
        assert answer == b""  # an idle connection is simply closed
        answer, _ = await _cut_after(half_reader, half_started, HEADER_TIMEOUT)
        status, problem = _problem(answer)
        assert (status, problem["code"]) == (408, "request_timeout")
        answer, _ = await _cut_after(drip_reader, drip_started, HEADER_TIMEOUT)
        assert _problem(answer)[0] == 408
    finally:
        dripper.cancel()
        for writer in (idle, half, drip):
            writer.close()


async def test_a_kept_alive_connection_that_sends_half_a_head_is_cut(
    service: ServiceProcess,
) -> None:
    reader, writer = await _open(service)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    # The next request starts, and stalls: its head's deadline runs from its first byte.
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: te")
    started = time.monotonic()
    answer, _ = await _cut_after(reader, started, HEADER_TIMEOUT)
    status, problem = _problem(answer)
    assert (status, problem["code"]) == (408, "request_timeout")
    writer.close()


async def test_a_stalled_body_is_cut_and_one_without_a_key_is_never_read(
    service: ServiceProcess, net: dict[str, Any]
) -> None:
    trades = f"{net['base']}/trades"
    declared = "Content-Length: 60000"
    # With a valid key: the body may come, but only until its deadline.
    keyed_reader, keyed = await _open(service)
    keyed.write(
        _head(
            trades,
            f"Authorization: Bearer {net['token']}",
            "Idempotency-Key: stall-1",
            "Content-Type: application/json",
            declared,
        )
        + b"x" * 50_000
    )
    keyed_started = time.monotonic()
    # Without a key, with a bad one, to another route, and to the federation: refused on the
    # headers alone, at once, and the connection closed without waiting for the body.
    refused = [
        (_head(trades, declared), "unauthorized"),
        (_head(trades, "Authorization: Bearer mc_nokey_nosecret", declared), "unauthorized"),
        (_head(f"{net['base']}/accounts", declared), "unauthorized"),
        (_head(f"/federation/v1/networks/{net['code']}/transfers", declared),
         "peer_signature_missing"),
        (_head(f"/federation/v1/networks/{net['code']}/transfers", declared,
               *(f"MC-{h}: x" for h in ("From", "Key-Id", "Nonce", "Signature")),
               f"MC-Created: {int(time.time())}", f"MC-To: {net['code']}"), "peer_unknown"),
    ]  # fmt: skip
    for head, code in refused:
        reader, writer = await _open(service)
        writer.write(head + b"x" * 50_000)
        started = time.monotonic()
        answer = await read_until_closed(reader, within=5)
        assert time.monotonic() - started < 1.0
        status, problem = _problem(answer)
        assert (status, problem["code"]) == (401, code), problem
        writer.close()

    answer, _ = await _cut_after(keyed_reader, keyed_started, BODY_TIMEOUT)
    status, problem = _problem(answer)
    assert (status, problem["code"]) == (408, "request_timeout")
    keyed.close()
    # Nothing was booked for the stalled trade: its key is still free.
    assert (await trade(service.base, net, key="stall-1")).status_code == 201


async def test_an_endless_chunked_body_is_cut(service: ServiceProcess, net: dict[str, Any]) -> None:
    reader, writer = await _open(service)
    writer.write(
        _head(
            f"{net['base']}/trades",
            f"Authorization: Bearer {net['token']}",
            "Idempotency-Key: endless",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
        )
    )
    started = time.monotonic()

    async def chunks() -> None:
        while True:
            writer.write(b"1\r\n \r\n")
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(chunks())
    try:
        answer, _ = await _cut_after(reader, started, BODY_TIMEOUT)
        assert _problem(answer)[0] == 408
    finally:
        sender.cancel()
        writer.close()


async def test_a_client_that_does_not_read_its_answers_is_cut(service: ServiceProcess) -> None:
    """40 requests for the API description (about 7 MB of answers) sent at once, and nothing
    read: once the kernel's buffers are full, the server waits on the client, and gives up
    after the send deadline instead of holding the rest for ever."""
    requests = 40
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", service.port))
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n" * requests)
        await asyncio.sleep(SEND_TIMEOUT + SLACK)
        sock.settimeout(5)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                chunks.append(chunk)
    received = b"".join(chunks)
    head, _, _ = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    assert len(received) < requests * length


async def test_headers_beyond_the_limit_are_refused(service: ServiceProcess) -> None:
    reader, writer = await _open(service)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 10))
    answer = await read_until_closed(reader, within=5)
    status, problem = _problem(answer)
    assert (status, problem["code"]) == (431, "headers_too_large")
    writer.close()


async def test_a_worker_holds_at_most_max_connections(service: ServiceProcess) -> None:
    opened = [await _open(service) for _ in range(MAX_CONNECTIONS)]
    started = time.monotonic()
    await asyncio.sleep(0.2)  # every one of them accepted by the server
    reader, writer = await _open(service)
    answer = await read_until_closed(reader, within=5)
    status, problem = _problem(answer)
    assert (status, problem["code"]) == (503, "server_busy")
    writer.close()
    # They are idle: the head deadline frees them all, and the worker answers again.
    for idle_reader, _ in opened:
        await read_until_closed(idle_reader, within=started + HEADER_TIMEOUT + SLACK + 5)
    assert time.monotonic() - started <= HEADER_TIMEOUT + SLACK
    for _, idle in opened:
        idle.close()
    reader, writer = await _open(service)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    assert (await read_until_closed(reader, within=5)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_the_body_bytes_a_worker_holds_are_bounded(
    service: ServiceProcess, net: dict[str, Any]
) -> None:
    head = _head(f"{net['base']}/accounts", f"Authorization: Bearer {net['token']}",
                 "Content-Type: application/json", "Content-Length: 64000")  # fmt: skip
    held = []
    for _ in range(MAX_BUFFERED_BYTES // 60_000):  # 4 of 60,000 bytes fit in 262,144
        reader, writer = await _open(service)
        writer.write(head + b" " * 60_000)
        held.append((reader, writer))
        await asyncio.sleep(0.2)
    started = time.monotonic()
    reader, writer = await _open(service)
    writer.write(head + b" " * 60_000)
    answer = await read_until_closed(reader, within=5)
    assert time.monotonic() - started < 1.0
    status, problem = _problem(answer)
    assert (status, problem["code"]) == (503, "server_busy")
    writer.close()
    for held_reader, held_writer in held:
        answer = await read_until_closed(held_reader, within=BODY_TIMEOUT + SLACK + 5)
        assert _problem(answer)[0] == 408
        held_writer.close()


async def test_many_stalled_clients_at_once_are_all_cut_while_others_trade(
    service: ServiceProcess, net: dict[str, Any]
) -> None:
    """A mix of every kind above, 200 connections at once: each is cut within its deadline,
    and a normal trade, made meanwhile, answers within a second each time."""
    trades = f"{net['base']}/trades"
    key = f"Authorization: Bearer {net['token']}"
    kinds = {
        "idle": (b"", HEADER_TIMEOUT),
        "half head": (b"POST /v1/networks/x/trades HTTP/1.1\r\nHost: t\r\n", HEADER_TIMEOUT),
        # 2 KB of each: 40 of them hold 80 KB, well within the bytes a worker may hold.
        "stalled body": (_head(trades, key, "Idempotency-Key: s", "Content-Type: application/json",
                               "Content-Length: 60000") + b" " * 2000, BODY_TIMEOUT),
        "stalled body, no key": (_head(trades, "Content-Length: 60000") + b" " * 2000, 0.0),
        "chunked": (_head(trades, key, "Idempotency-Key: c", "Content-Type: application/json",
                          "Transfer-Encoding: chunked") + b"1\r\n \r\n", BODY_TIMEOUT),
    }  # fmt: skip
    connections = []
    for n in range(200):
        name = list(kinds)[n % len(kinds)]
        data, deadline = kinds[name]
        reader, writer = await _open(service)
        writer.write(data)
        connections.append((name, deadline, time.monotonic(), reader, writer))

    latencies: list[float] = []

    async def trading() -> None:
        while True:
            started = time.monotonic()
            response = await trade(service.base, net)
            latencies.append(time.monotonic() - started)
            assert response.status_code == 201, response.text
            await asyncio.sleep(0.2)

    async def cut(name: str, deadline: float, started: float, reader: Any) -> tuple[str, float]:
        await read_until_closed(reader, within=deadline + SLACK + 5)
        return name, time.monotonic() - started

    trader = asyncio.create_task(trading())
    results = await asyncio.gather(*(cut(n, d, s, r) for n, d, s, r, _ in connections))
    trader.cancel()
    for _, _, _, _, writer in connections:
        writer.close()
    for name, elapsed in results:
        deadline = kinds[name][1]
        assert elapsed <= deadline + SLACK, (name, elapsed)
    assert len(latencies) >= 5
    assert max(latencies) < 1.0, latencies
