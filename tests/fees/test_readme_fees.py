"""The README's fees example runs as written, and its worked numbers are the service's.

The shell block of the README's "Fees" section is taken from README.md itself and run with bash
against `mutualcredit serve` (the installed script) on a fresh data directory, after the two
lines of "Run it" that set KEY and API (with the key serve printed and its port). Each command's
answer is checked; a command the section gains without a check here fails the test.
"""

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.command_line import Service, readme_blocks, run_shell, shell_commands

README = Path(__file__).resolve().parents[2] / "README.md"

Check = Callable[[str], None]


def _json(out: str) -> Any:
    assert out.strip(), "no answer"
    return json.loads(out)


def _silent(out: str) -> None:
    assert out == "", out


def _treasury(out: str) -> None:
    account = _json(out)
    assert (account["code"], account["kind"]) == ("treasury", "system")


def _member(out: str) -> None:
    assert _json(out)["code"] in ("carol", "dan")


def _dry_run(out: str) -> None:
    answer = _json(out)
    # Nothing has been traded yet: the levy would have charged no one.
    assert answer["charges"] == []
    assert answer["rule"]["code"] == "levy"


def _levy(out: str) -> None:
    rule = _json(out)
    assert (rule["code"], rule["kind"], rule["charge"]) == ("levy", "levy", "both")
    assert rule["rate"] == {"num": 1, "den": 50}
    assert rule["in_force"] is True


def _trade(out: str) -> None:
    trade = _json(out)
    assert (trade["payer"], trade["payee"], trade["amount"]) == ("carol", "dan", 1234)
    # The worked example: floor(12.34 x 2 %) = 0.24 on each side, 0.48 to the treasury.
    fees = sorted((f["account"], f["amount"], f["rule"]) for f in trade["fees"])
    assert fees == [("carol", 24, "levy"), ("dan", 24, "levy")]


def _membership(out: str) -> None:
    rule = _json(out)
    assert (rule["code"], rule["kind"], rule["amount"], rule["period"]) == (
        "membership",
        "membership",
        500,
        "month",
    )
    assert rule["in_force"] is False
    starts = dt.datetime.fromisoformat(rule["starts_at"])
    assert (starts.day, starts.hour, starts.minute) == (1, 0, 0)


def _preview(out: str) -> None:
    preview = _json(out)
    # Every member (carol and dan: the treasury is a system account) pays 5.00 at the boundary.
    charges = {c["account"]: (c["fee"], c["amount"], c["waived"]) for c in preview["charges"]}
    assert charges == {"carol": (500, 500, 0), "dan": (500, 500, 0)}


def _charges(out: str) -> None:
    items = _json(out)["items"]
    assert sorted((c["rule"], c["account"], c["amount"]) for c in items) == [
        ("levy", "carol", 24),
        ("levy", "dan", 24),
    ]
    assert {c["treasury"] for c in items} == {"treasury"}


CHECKS: list[tuple[str, Check]] = [
    (r"^H=", _silent),
    (r'"code": "treasury"', _treasury),
    (r'"code": "(carol|dan)"', _member),
    (r"^LEVY=", _silent),
    (r"dry_run", _dry_run),
    (r'-d "\$LEVY}"', _levy),
    (r"-X POST \$API/trades ", _trade),
    (r"^NEXT=", _silent),
    (r'"code": "membership"', _membership),
    (r"/fee-rules/membership/preview", _preview),
    (r"/fee-charges", _charges),
]


def test_the_readme_fees_example_runs_as_written(tmp_path: Path) -> None:
    (block,) = readme_blocks(README, "Fees")
    service = Service(tmp_path).start()
    try:
        key = service.first_start_key()
        setup = f"KEY={key}\nAPI=http://127.0.0.1:{service.port}/v1/networks/demo\n"
        commands = shell_commands(setup + block)
        answers, stderr = run_shell(tmp_path, commands)
        assert stderr == "", stderr
        used = set()
        for command, (out, status) in list(zip(commands, answers, strict=True))[2:]:
            matching = [i for i, (pattern, _) in enumerate(CHECKS) if re.search(pattern, command)]
            assert len(matching) == 1, f"no single check for the README's command: {command}"
            used.add(matching[0])
            assert status == 0, (command, out)
            try:
                CHECKS[matching[0]][1](out)
            except (AssertionError, ValueError, KeyError) as exc:
                raise AssertionError(f"{command}\nanswered:\n{out}") from exc
        unused = [CHECKS[i][0] for i in range(len(CHECKS)) if i not in used]
        assert not unused, f"checks for commands the README no longer has: {unused}"
    finally:
        service.stop()
