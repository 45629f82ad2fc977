"""Request bodies are JSON read strictly: a ledger never guesses what a client meant.

Python's `json` module, like most parsers, accepts what RFC 8259 leaves open or forbids, and then
guesses: a member named twice keeps the last value (`{"amount": 1, "amount": 7}` would book 7),
`NaN` and `Infinity` are read as floats that JSON cannot carry back (stored as null), and `1e400`
becomes infinity. `loads` refuses each of these with a message that says what and where, as a
`json.JSONDecodeError`, which FastAPI answers as a 422 `validation_error` like any other
malformed body. Every body the service reads goes through it: the framework's routes (their
`route_class`) and the trade lane alike, so a body means the same on both paths.
"""

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response


class _Refused(ValueError):
    """A value the hooks below refuse; `loads` turns it into a JSONDecodeError."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _Refused(f"member {name!r} appears more than once in an object")
        result[name] = value
    return result


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {text[:40]} is out of range")
    return value


def loads(body: bytes | str) -> Any:
    """The JSON value of `body`, refusing duplicate members, NaN, Infinity and numbers beyond the
    range of a double. Raises json.JSONDecodeError (a ValueError) for anything it refuses."""
    try:
        # RFC 8259: JSON exchanged between systems is UTF-8 (json.loads would guess UTF-16/32).
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not valid UTF-8", "", exc.start) from None
    try:
        return json.loads(
            text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float
        )
    except _Refused as exc:
        # The hooks do not know the offset; the message says what was refused.
        raise json.JSONDecodeError(str(exc), text, 0) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read by `loads` (FastAPI calls `request.json()`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
