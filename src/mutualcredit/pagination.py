"""Opaque cursors for keyset pagination: stable under concurrent inserts, cheap at any depth."""

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import orjson
from fastapi import Query

from mutualcredit.errors import ValidationProblem
from mutualcredit.schemas import Count

PageSize = Annotated[Count, Query(ge=1, le=500, description="Items per page (1-500).")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="The `next_cursor` of the previous page.")
]


def encode_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _not_ours() -> ValidationProblem:
    return ValidationProblem("cursor: not a cursor this service issued")


def decode_cursor(cursor: str, arity: int) -> list[object]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise _not_ours() from exc
    if not isinstance(values, list) or len(values) != arity:
        raise _not_ours()
    return values


T = TypeVar("T")
K = TypeVar("K")
Page = tuple[list[T], str | None]


def page(rows: list[T], limit: int, position: Callable[[T], tuple[object, ...]]) -> Page[T]:
    """Splits `limit + 1` fetched rows into a page and the cursor after it (None at the end)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(*position(rows[-1]))


def after_int(cursor: str | None) -> int | None:
    """The position in a cursor of one integer id."""
    if cursor is None:
        return None
    (value,) = decode_cursor(cursor, 1)
    if not isinstance(value, int):
        raise _not_ours()
    return value


def after_time_and_id(cursor: str | None, id_type: Callable[[str], K]) -> tuple[datetime, K] | None:
    """The position in a cursor of (timestamp, id)."""
    if cursor is None:
        return None
    at, last = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(at)), id_type(str(last))
    except ValueError:
        raise _not_ours() from None
