"""The README lists every error code the service can return, and no other."""

import importlib
import pkgutil
import re
from pathlib import Path

import mutualcredit
from mutualcredit.errors import ProblemError

README = Path(__file__).resolve().parents[1] / "README.md"


def _codes_in_code() -> set[str]:
    for module in pkgutil.walk_packages(mutualcredit.__path__, "mutualcredit."):
        importlib.import_module(module.name)
    found: set[str] = set()
    pending: list[type[ProblemError]] = [ProblemError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # A class that names no code of its own (a stored refusal replayed under its
        # Idempotency-Key carries the code it was first answered with) adds none.
        if cls is not ProblemError and "code" in vars(cls):
            found.add(cls.code)
    return found


def test_the_readme_lists_every_error_code() -> None:
    table = re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", README.read_text(), flags=re.MULTILINE)
    assert len(table) == len(set(table)), "a code is listed twice"
    assert set(table) == _codes_in_code()
