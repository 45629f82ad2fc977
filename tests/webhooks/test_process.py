"""Where deliveries run: the delivery process `serve` starts beside its HTTP worker (the
default), and the two other settings, through real service processes.

What must hold: `serve` has exactly one delivery process; it is started again when it dies; it
dies with `serve`, whether `serve` is stopped or killed outright (no orphan delivering from a
service that is gone); with MUTUALCREDIT_WEBHOOK_DELIVERY=off nothing is delivered until
`mutualcredit deliver` runs; with `workers`, the worker delivers itself. The delivery process
runs at the priority set (MUTUALCREDIT_WEBHOOK_PRIORITY)."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.federation.checks import wait
from tests.federation.cluster import Cluster, Node
from tests.processes import children
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import SETTINGS, create, disable, pay, posted


def deliverers(node: Node) -> list[int]:
    assert node.proc is not None
    return [pid for pid, cmd in children(node.proc.pid).items() if " deliver " in f"{cmd} "]


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def with_endpoint(
    cluster: Cluster, receivers: list[Receiver], name: str
) -> tuple[Node, Receiver, dict[str, Any]]:
    """A node with the members ann and bob, and an endpoint for `trade.posted` at a receiver of
    its own, which verifies every delivery with the endpoint's secret."""
    node = cluster.add(name)
    node.member("ann")
    node.member("bob")
    receiver = Receiver().start()
    receivers.append(receiver)
    endpoint = create(node, receiver.url)
    receiver.control(secrets=[endpoint["secret"]])
    return node, receiver, endpoint


def delivered(node: Node, receiver: Receiver, count: int) -> None:
    """One more trade reaches the receiver (its `count`th delivery), verified."""
    trade = pay(node)
    wait(lambda: len(posted(receiver.received())) == count, seconds=60)
    got = posted(receiver.received())[-1]
    assert got["body"]["data"]["trade"]["id"] == trade
    assert got["verified_by"] == [0]


def in_the_feed(node: Node) -> list[str]:
    """The trades of the network's `trade.posted` events, as the operator reads the feed."""
    r = node.request("GET", "/events?types=trade.posted", node.operator)
    assert r.status_code == 200, r.text
    return [e["data"]["trade"]["id"] for e in r.json()["items"]]


@pytest.fixture
def cluster(server_url: str) -> Iterator[Cluster]:
    c = Cluster(server_url, Path(tempfile.mkdtemp(prefix="mc-deliverer-")), **SETTINGS)
    try:
        yield c
    finally:
        c.close()


def test_serve_keeps_one_delivery_process_which_ends_with_it(
    cluster: Cluster, receivers: list[Receiver]
) -> None:
    node, receiver, endpoint = with_endpoint(cluster, receivers, "dp")

    wait(lambda: len(deliverers(node)) == 1)
    first = deliverers(node)[0]
    delivered(node, receiver, 1)
    # It runs on the CPU the workers leave (MUTUALCREDIT_WEBHOOK_PRIORITY=idle by default).
    assert os.sched_getscheduler(first) == os.SCHED_IDLE
    assert node.proc is not None
    assert os.sched_getscheduler(node.proc.pid) == os.SCHED_OTHER

    # Killed outright, the delivery process is started again, and delivers.
    os.kill(first, signal.SIGKILL)
    wait(lambda: len(deliverers(node)) == 1 and deliverers(node)[0] != first)
    second = deliverers(node)[0]
    delivered(node, receiver, 2)
    assert deliverers(node) == [second]

    # serve alone killed outright (not its children, as Node.kill does): its delivery process
    # does not outlive it.
    assert node.proc is not None
    node.proc.kill()
    node.proc.wait()
    node.proc = None
    wait(lambda: not alive(second), seconds=10)

    # serve stopped: it stops its delivery process, and exits cleanly.
    node.start()
    wait(lambda: len(deliverers(node)) == 1)
    third = deliverers(node)[0]
    delivered(node, receiver, 3)
    assert node.proc is not None
    proc = node.proc
    node.stop()
    assert proc.returncode == 0
    assert not alive(third)
    assert len(posted(receiver.received())) == 3
    node.start()
    disable(node, endpoint)


def test_off_delivers_nothing_until_deliver_runs_and_workers_deliver_themselves(
    cluster: Cluster, receivers: list[Receiver]
) -> None:
    node, receiver, endpoint = with_endpoint(cluster, receivers, "do")

    node.stop()
    node.settings["MUTUALCREDIT_WEBHOOK_DELIVERY"] = "off"
    node.start()
    first = pay(node)
    # The sealer still runs (the feed has the trade): only the delivery is elsewhere.
    wait(lambda: first in in_the_feed(node))
    time.sleep(2)  # twenty delivery intervals: time enough for a delivery, were one made
    assert deliverers(node) == []
    assert receiver.received() == []

    # `mutualcredit deliver`, on its own, delivers what is due and what comes.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
    env.update(
        node.settings,
        MUTUALCREDIT_DATABASE_URL=node.database_url,
        MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE="true",  # the receiver listens on loopback
    )
    env.pop("MUTUALCREDIT_WEBHOOK_DELIVERY")
    env["MUTUALCREDIT_WEBHOOK_PRIORITY"] = "low"
    with (cluster.workdir / "deliver.log").open("ab") as log:
        deliver = subprocess.Popen(
            [sys.executable, "-m", "mutualcredit.cli", "deliver"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait(lambda: len(posted(receiver.received())) == 1, seconds=60)
        assert os.sched_getscheduler(deliver.pid) == os.SCHED_OTHER
        assert (
            os.getpriority(os.PRIO_PROCESS, deliver.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
        )
        assert posted(receiver.received())[0]["body"]["data"]["trade"]["id"] == first
        delivered(node, receiver, 2)
    finally:
        deliver.send_signal(signal.SIGTERM)
        assert deliver.wait(timeout=30) == 0

    # workers: no delivery process; the worker delivers.
    node.stop()
    node.settings["MUTUALCREDIT_WEBHOOK_DELIVERY"] = "workers"
    node.start()
    time.sleep(1)
    assert deliverers(node) == []
    delivered(node, receiver, 3)
    disable(node, endpoint)
