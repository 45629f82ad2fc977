"""Turning service results into HTTP responses."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mutualcredit.auth.service import Principal
from mutualcredit.errors import ValidationProblem
from mutualcredit.idempotency import service as idempotency

# An Idempotency-Key: 1-200 printable ASCII characters (the trade lane checks the same rule).
IDEMPOTENCY_KEY_CHAR = r"[\x21-\x7e]"
IDEMPOTENCY_KEY_MAX = 200


def idempotency_key(description: str, *, required: bool = False) -> Any:
    """The Idempotency-Key header (printable ASCII, 1-200 characters), sent once: with two,
    which one a retry would be matched by is a guess, so the request is refused.

    `required`: the document says so, and a request without it is refused with its own code,
    `idempotency_key_required` (errors.py answers the framework's "missing" with it)."""
    header = Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=f"^{IDEMPOTENCY_KEY_CHAR}+$",
        description=description,
    )

    def sent_once(request: Request) -> None:
        if len(request.headers.getlist("idempotency-key")) > 1:
            raise ValidationProblem("Idempotency-Key: send the header once")

    def optional(request: Request, key: Annotated[str | None, header] = None) -> str | None:
        sent_once(request)
        return key

    def mandatory(request: Request, key: Annotated[str, header]) -> str:
        sent_once(request)
        return key

    return Depends(mandatory if required else optional)


IdempotencyKey = Annotated[
    str | None,
    idempotency_key(
        "A client-chosen key (a UUID is ideal). A retry with the same key and body "
        "returns the original response; with a different body it is refused with 409."
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


async def idempotent(
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    *,
    scope: str,
    payload: Any,
    write: Callable[[], Awaitable[BaseModel]],
    status_code: int = 200,
    secret_fields: tuple[str, ...] = (),
) -> Response:
    """Runs an admin write at most once per (API key, Idempotency-Key) and answers with its
    response, or with the stored one on a replay (see idempotency.service)."""
    outcome = await idempotency.respond(
        session,
        api_key_id=principal.key_uuid,
        key=key,
        scope=scope,
        payload=payload,
        status_code=status_code,
        write=write,
        secret_fields=secret_fields,
    )
    return json_response(outcome.body, outcome.status_code, replayed=outcome.replayed)
