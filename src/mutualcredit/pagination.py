"""Opaque cursors for keyset pagination: stable under concurrent inserts, cheap at any depth."""

import base64
import binascii
from typing import Annotated

import orjson
from fastapi import Query

from mutualcredit.errors import ValidationProblem

PageSize = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500).")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="The `next_cursor` of the previous page.")
]


def encode_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[object]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ValidationProblem("cursor: not a cursor this service issued") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ValidationProblem("cursor: not a cursor this service issued")
    return values
