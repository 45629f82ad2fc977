"""The README's walkthrough runs as written.

The shell blocks of "Run it" (the first steps, and "An operator's day, continued") are taken
from README.md itself, so the README cannot drift from what the service does, and run with bash,
one session for all of them, against `mutualcredit serve` (the installed script) started on a
fresh data directory, with KEY taken from what serve printed on its first start. Two things are
put in that a reader would fill in: that key, for the `KEY=mc_...` line, and the port (the
README's 8000 may be taken on the test machine). Then each command's answer is checked; a
command the README gains without a check here fails the test.
"""

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.command_line import Service, readme_blocks, run_shell, shell_commands

README = Path(__file__).resolve().parents[1] / "README.md"

Check = Callable[[str, "Session"], None]


class Session:
    """What the checks know besides each answer: the key and the working directory."""

    def __init__(self, key: str, cwd: Path) -> None:
        self.key = key
        self.cwd = cwd
        self.key_id = key.split("_")[1]


def _json(out: str) -> Any:
    assert out.strip(), "no answer"
    return json.loads(out)


def _silent(out: str, session: Session) -> None:
    assert out == "", out


def _bakery(out: str, session: Session) -> None:
    account = _json(out)
    assert account["code"] == "bakery"
    assert account["name"] == "The Bakery"
    # "limits default to the network's: 100.00 hours of credit"
    assert account["credit_limit"] == 10_000
    assert account["balance"] == 0


def _alice(out: str, session: Session) -> None:
    account = _json(out)
    assert account["code"] == "alice"
    assert (account["credit_limit"], account["balance_max"]) == (5000, 50_000)


def _bread(out: str, session: Session) -> None:
    trade = _json(out)
    assert (trade["payer"], trade["payee"], trade["amount"]) == ("alice", "bakery", 250)
    assert trade["status"] == "posted"
    assert trade["description"] == "bread"


def _alice_after_bread(out: str, session: Session) -> None:
    account = _json(out)
    assert account["balance"] == -250
    assert account["available"] == 5000 - 250


def _statement(out: str, session: Session) -> None:
    statement = _json(out)
    assert statement["account"] == "alice"
    assert statement["closing_balance"] == -250
    assert statement["entry_count"] == 1
    assert [e["counterparty"] for e in statement["entries"]] == ["bakery"]


def _member_key(out: str, session: Session) -> None:
    key = _json(out)
    assert (key["role"], key["account"]) == ("member", "alice")
    assert key["token"].startswith("mc_")


def _raised(out: str, session: Session) -> None:
    answer = _json(out)
    assert answer["account"]["credit_limit"] == 20_000
    assert answer["account"]["balance_max"] == 50_000


def _history(out: str, session: Session) -> None:
    changes = _json(out)["items"]
    last = changes[-1]
    assert last["kind"] == "temporary"
    assert last["reason"] == "harvest season"
    assert (last["credit_limit_before"], last["credit_limit_after"]) == (5000, 20_000)
    assert last["actor"] == f"operator:{session.key_id}"
    assert last["reverts_at"]


def _limits_now(out: str, session: Session) -> None:
    limits = _json(out)
    # The new limits: the moment asked for is after the change.
    assert (limits["credit_limit"], limits["balance_max"]) == (20_000, 50_000)


def _reversal(out: str, session: Session) -> None:
    trade = _json(out)
    assert (trade["payer"], trade["payee"], trade["amount"]) == ("bakery", "alice", 250)
    assert trade["status"] == "posted"
    assert trade["reverses_trade_id"]


def _accepted(out: str, session: Session) -> None:
    request = _json(out)
    assert request["status"] == "accepted"
    assert (request["payer"], request["payee"], request["amount"]) == ("alice", "bakery", 400)


def _suspended(out: str, session: Session) -> None:
    account = _json(out)
    assert account["code"] == "alice"
    assert account["status"] == "suspended"
    assert account["balance"] == -400


def _auditor_key(out: str, session: Session) -> None:
    key = _json(out)
    assert key["role"] == "auditor"
    assert key["token"].startswith("mc_")


def _health(out: str, session: Session) -> None:
    health = _json(out)
    assert health["network"] == "demo"
    assert health["period"] == "week"


def _audit(out: str, session: Session) -> None:
    records = _json(out)["items"]
    actions = {(r["actor"], r["action"]) for r in records}
    assert ("cli:serve", "network.created") in actions
    operator = f"operator:{session.key_id}"
    for action in ("account.created", "trade.created", "account.limits_changed"):
        assert (operator, action) in actions, action


def _verified(out: str, session: Session) -> None:
    verification = _json(out)
    assert verification["ok"] is True
    assert verification["network"] == "demo"


def _csv(out: str, session: Session) -> None:
    assert out == ""
    rows = list(csv.DictReader(io.StringIO((session.cwd / "trades.csv").read_text())))
    # The bread, its reversal, and the payment of the accepted request.
    assert sorted(int(r["amount"]) for r in rows) == [250, 250, 400], rows


# Each command of the walkthrough, by what it says, and how its answer is checked.
CHECKS: list[tuple[str, Check]] = [
    (r"^KEY=", _silent),
    (r"^API=", _silent),
    (r'/accounts .*"code": "bakery"', _bakery),
    (r'/accounts .*"code": "alice"', _alice),
    (r"-X POST \$API/trades ", _bread),
    (r"^curl -s \$API/accounts/alice -H", _alice_after_bread),
    (r"/accounts/alice/statement", _statement),
    (r'/keys .*"role": "member"', _member_key),
    (r"^H=", _silent),
    (r"^UNTIL=", _silent),
    (r"-X PUT \$API/accounts/alice/limits", _raised),
    (r"/limits/history", _history),
    (r"^NOW=", _silent),
    (r"/limits\?at=", _limits_now),
    (r"^TRADE_ID=", _silent),
    (r"/trades/\$TRADE_ID/reverse", _reversal),
    (r"^REQUEST_ID=", _silent),
    (r"/requests/\$REQUEST_ID/accept", _accepted),
    (r"/accounts/alice/suspend", _suspended),
    (r'/keys .*"role": "auditor"', _auditor_key),
    (r"/health\?period=week", _health),
    (r"^curl -s \$API/audit \"", _audit),
    (r"/audit/verify", _verified),
    (r"/trades\.csv", _csv),
]


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    blocks = readme_blocks(README, "Run it")
    assert len(blocks) == 3, blocks
    install, first_steps, operators_day = blocks
    # The first block installs the package and starts the service: here the installed script
    # of this environment is what it installs, and serve starts on a fresh home directory.
    assert "pip install . && mutualcredit serve" in install

    service = Service(tmp_path).start()
    try:
        key = service.first_start_key()
        api_line = "API=http://127.0.0.1:8000/v1/networks/demo"
        key_line = "KEY=mc_...   # the operator key printed on first start"
        assert api_line in first_steps
        assert key_line in first_steps
        first_steps = first_steps.replace(key_line, f"KEY={key}").replace(
            "127.0.0.1:8000", f"127.0.0.1:{service.port}"
        )
        commands = shell_commands(first_steps) + shell_commands(operators_day)
        answers, stderr = run_shell(tmp_path, commands)
        assert stderr == "", stderr
        session = Session(key, tmp_path)
        used = set()
        for command, (out, status) in zip(commands, answers, strict=True):
            matching = [i for i, (pattern, _) in enumerate(CHECKS) if re.search(pattern, command)]
            assert len(matching) == 1, f"no single check for the README's command: {command}"
            used.add(matching[0])
            assert status == 0, (command, out)
            try:
                CHECKS[matching[0]][1](out, session)
            except (AssertionError, ValueError, KeyError) as exc:
                raise AssertionError(f"{command}\nanswered:\n{out}") from exc
        unused = [CHECKS[i][0] for i in range(len(CHECKS)) if i not in used]
        assert not unused, f"checks for commands the README no longer has: {unused}"
    finally:
        service.stop()
