"""Turning service results into HTTP responses."""

from typing import Annotated, Any

import orjson
from fastapi import Header
from starlette.responses import Response

from mutualcredit.idempotency.service import Outcome

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="A client-chosen key (a UUID is ideal). A retry with the same key and body "
        "returns the original response; with a different body it is refused with 409.",
    ),
]


def json_response(body: Any, status_code: int = 200, *, replayed: bool = False) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(
        content=orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def outcome_response(outcome: Outcome) -> Response:
    return json_response(outcome.body, outcome.status_code, replayed=outcome.replayed)
