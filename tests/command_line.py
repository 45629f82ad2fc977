"""The installed `mutualcredit` command, run as a user runs it.

The console script of this environment (next to its Python), never `main()` in the test's own
process nor `python -m`: each command runs in a fresh process, with a home of its own and none
of the MUTUALCREDIT_* variables set, so the embedded PostgreSQL keeps its data where the README
says (`~/.local/share/mutualcredit`) unless a test says otherwise.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(sys.executable).parent / "mutualcredit"

# What serve prints, once, on the first start of an embedded database.
TOKEN = re.compile(r"mc_[0-9a-f]{16}_[A-Za-z0-9_-]+")


def environment(home: Path, **extra: str) -> dict[str, str]:
    """A user who configured nothing: no MUTUALCREDIT_* variables, and no XDG_RUNTIME_DIR (as
    on a server, in a container or over ssh, where platformdirs warns about it)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MUTUALCREDIT_") and name != "XDG_RUNTIME_DIR"
    }
    env["HOME"] = str(home)
    env.update(extra)
    return env


@dataclass
class Result:
    args: tuple[str, ...]
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Result:
    """The command in `home`, its working directory too."""
    proc = subprocess.run(  # noqa: S603 - our own command
        [str(SCRIPT), *args],
        cwd=home,
        env=environment(home, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = Result(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    # For every command, whatever happens: no traceback, and no warning about XDG_RUNTIME_DIR.
    assert "Traceback" not in result.err, result
    assert "XDG_RUNTIME_DIR" not in result.err, result
    return result


def ok(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = run(home, *args, env=env)
    assert result.status == 0, result
    return result


def log_lines(err: str) -> list[dict[str, object]]:
    """stderr's log lines: with stderr not a terminal, each is one JSON object."""
    records = []
    for line in err.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    return records


def error_of(result: Result, status: int) -> str:
    """The one line that says what went wrong: the last on stderr, after nothing but log lines,
    with the exit status of its kind."""
    assert result.status == status, result
    lines = result.err.splitlines()
    assert lines, result
    message = lines[-1]
    assert message.startswith("mutualcredit"), result
    assert ": " in message, result
    log_lines("\n".join(lines[:-1]))
    return message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Service:
    """`mutualcredit serve` in a process of its own, on a free port."""

    home: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.home / f"serve-{self.port}.out"

    @property
    def stderr_path(self) -> Path:
        return self.home / f"serve-{self.port}.err"

    def start(self) -> "Service":
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - our own command
                [str(SCRIPT), "serve", "--port", str(self.port), *self.args],
                cwd=self.home,
                env=environment(self.home, **self.env),
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"serve did not become ready:\n{self.output()}")

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def first_start_key(self) -> str:
        """The operator key serve printed on the first start of its embedded database."""
        found = TOKEN.search(self.stdout_path.read_text())
        assert found, self.output()
        return found.group(0)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(timeout=45) == 0, self.output()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def readme_blocks(readme: Path, heading: str) -> list[str]:
    """The shell blocks of a section of the README, as written there."""
    section = readme.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def shell_commands(block: str) -> list[str]:
    """A block's commands: lines joined where they continue (a trailing backslash), without
    comment lines and blank ones."""
    joined = block.replace("\\\n", " ")
    return [
        line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def run_shell(
    home: Path, commands: list[str], env: dict[str, str] | None = None
) -> tuple[list[tuple[str, int]], str]:
    """The commands one after another in one bash session in `home`, as a reader types them;
    each one's answer (stdout) with its exit status, and the session's stderr."""
    lines = []
    for i, command in enumerate(commands):
        lines.append(f"printf '\\n@@begin {i}@@\\n'")
        lines.append(command)
        lines.append(f"printf '\\n@@end {i} %d@@\\n' \"$?\"")
    script = home / "commands.sh"
    script.write_text("\n".join(lines) + "\n")
    shell_env = environment(home, **(env or {}))
    # This environment's tools first on the PATH (mutualcredit, python3), as for a reader who
    # activated it.
    shell_env["PATH"] = f"{SCRIPT.parent}:{shell_env.get('PATH', '')}"
    proc = subprocess.run(  # noqa: S603 - the README's own commands
        ["bash", str(script)],  # noqa: S607 - the reader's shell, from the PATH
        cwd=home,
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    answers = []
    for i in range(len(commands)):
        match = re.search(
            rf"\n@@begin {i}@@\n(.*?)\n@@end {i} (\d+)@@\n", proc.stdout, flags=re.DOTALL
        )
        assert match, f"command {i} did not finish:\n{proc.stdout}\n{proc.stderr}"
        answers.append((match.group(1), int(match.group(2))))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "XDG_RUNTIME_DIR" not in proc.stderr, proc.stderr
    return answers, proc.stderr
