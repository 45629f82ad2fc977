"""The delivery client (webhooks/sender.py) against a real HTTP/1.1 receiver process
(http11.py): connections kept alive and reused, answers read to their end or dropped, and a
connection the receiver closed while idle replaced without losing the POST."""

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mutualcredit.webhooks.sender import ConnectFailed, Sender, Target
from tests.federation.cluster import free_port


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.webhooks.http11", str(port)])  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/_stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=10)


def stats(base: str) -> dict[str, Any]:
    got: dict[str, Any] = httpx.get(f"{base}/_stats", timeout=5).json()
    return got


def connections(base: str, since: int) -> list[int]:
    """The connection each POST after the first `since` came on (the numbers from 1)."""
    return [number for number, _ in stats(base)["requests"][since:]]


async def post(sender: Sender, base: str, path: str) -> int:
    return await sender.post(Target.of(base + path), {"webhook-id": "evt_x_1"}, b"{}")


async def test_connections_are_kept_alive_and_reused(receiver: str) -> None:
    sender = Sender(allow_private=True, max_body=65536)
    since = len(stats(receiver)["requests"])
    try:
        assert [await post(sender, receiver, "/ok") for _ in range(5)] == [204] * 5
        # A chunked answer read to its end leaves the connection usable.
        assert await post(sender, receiver, "/chunked") == 200
        assert await post(sender, receiver, "/ok") == 204
        # One longer than the cap is not read: its connection is closed, the next is new.
        assert await post(sender, receiver, "/chunked-long") == 200
        assert await post(sender, receiver, "/ok") == 204
        # `connection: close` is obeyed.
        assert await post(sender, receiver, "/close") == 204
        assert await post(sender, receiver, "/ok") == 204
        used = connections(receiver, since)
        assert len(used) == 11
        assert len(set(used[:8])) == 1
        assert used[8] == used[9] != used[7]
        assert used[10] not in used[:10]
    finally:
        await sender.aclose()


async def test_a_connection_closed_while_idle_is_replaced(receiver: str) -> None:
    """The receiver closes a kept-alive connection as the next POST arrives on it: the POST
    goes once more on a new connection and is answered (at least once)."""
    sender = Sender(allow_private=True, max_body=65536)
    try:
        assert await post(sender, receiver, "/drop-next") == 204
        assert await post(sender, receiver, "/ok") == 204
        requests = stats(receiver)["requests"]
        (first, _), (dropped, path), (again, path_again) = requests[-3:]
        assert (dropped, path) == (first, "/ok")
        assert path_again == "/ok"
        assert again != dropped
    finally:
        await sender.aclose()


async def test_private_addresses_are_refused_unless_allowed(receiver: str) -> None:
    sender = Sender(allow_private=False, max_body=65536)
    since = len(stats(receiver)["requests"])
    with pytest.raises(ConnectFailed) as caught:
        await post(sender, receiver, "/ok")
    assert caught.value.refused
    assert connections(receiver, since) == []
