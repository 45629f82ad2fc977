"""The command line: bootstrapping without SQL, and `serve` on a fresh embedded PostgreSQL."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mutualcredit.cli import main


def test_create_network_and_keys_from_the_command_line(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = f"cli-{os.getpid()}-{time.monotonic_ns() % 100000}"
    assert main(["--database-url", database_url, "create-network", "--code", code,
                 "--name", "CLI", "--unit-name", "hour", "--unit-symbol", "h",
                 "--default-credit-limit", "500"]) == 0  # fmt: skip
    created = json.loads(capsys.readouterr().out)
    assert created["network"] == code
    assert created["operator_key"].startswith("mc_")

    assert main(["--database-url", database_url, "create-key", "--role", "platform"]) == 0
    assert json.loads(capsys.readouterr().out)["role"] == "platform"

    with pytest.raises(SystemExit, match="no network"):
        main(["--database-url", database_url, "create-key", "--role", "operator",
              "--network", "nowhere"])  # fmt: skip
    with pytest.raises(SystemExit, match="--account is required"):
        main(["--database-url", database_url, "create-key", "--role", "member",
              "--network", code])  # fmt: skip

    # Refusals and bad input are messages with exit status 2, not tracebacks.
    assert main(["--database-url", database_url, "create-network", "--code", code,
                 "--name", "again", "--unit-name", "h", "--unit-symbol", "h"]) == 2  # fmt: skip
    assert "exists" in capsys.readouterr().err
    assert main(["--database-url", database_url, "create-network", "--code", "Bad Code",
                 "--name", "x", "--unit-name", "h", "--unit-symbol", "h"]) == 2  # fmt: skip
    assert "code" in capsys.readouterr().err

    assert main(["--database-url", database_url, "check"]) == 0
    assert "all ledger checks passed" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTUALCREDIT_")}
    env["MUTUALCREDIT_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "mutualcredit.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Uvicorn running" in line:
            return proc, lines
    proc.kill()
    proc.wait()
    proc.stdout.close()
    raise AssertionError("serve did not start:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_starts_on_an_embedded_database_and_restarts_with_its_data(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc, lines = _start(tmp_path, port)
    try:
        output = "".join(lines)
        match = re.search(r"mc_[0-9a-f]{16}_[A-Za-z0-9_-]+", output)
        assert match, output
        key = match.group(0)
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        r = httpx.post(f"{base}/v1/networks/demo/accounts", json={"code": "alice"}, headers=headers)
        assert r.status_code == 201, r.text
    finally:
        _stop(proc)

    proc, lines = _start(tmp_path, port)
    try:
        assert "First start" not in "".join(lines)
        r = httpx.get(f"{base}/v1/networks/demo/accounts/alice", headers=headers)
        assert r.status_code == 200, r.text
    finally:
        _stop(proc)
    # The embedded server stops with the service.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
