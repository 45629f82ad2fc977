"""A service process and the processes it started (its webhook delivery process), for tests
that kill or pause the service as a whole, as a machine failing or stalling would."""

import contextlib
import os
import signal
from pathlib import Path


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        # The command name, in parentheses, may hold spaces: the fields after it are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found[int(entry.name)] = cmdline
    return found


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found = [pid]
    for child in children(pid):
        found += tree(child)
    return found


def signal_tree(pid: int, signum: signal.Signals) -> None:
    """Sends `signum` to `pid` and every process below it, the children first (so that none
    is started again by a parent that saw it die)."""
    for member in reversed(tree(pid)):
        with contextlib.suppress(ProcessLookupError):  # gone meanwhile
            os.kill(member, signum)
