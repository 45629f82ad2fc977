"""Exactly-once for writes other than trades.

`run(...)` claims (API key, Idempotency-Key) by inserting a record in the request's transaction
*before* the write. A concurrent duplicate blocks on the record's primary key until the first
transaction ends: if it committed, the duplicate replays the stored response; if it rolled back,
the duplicate's insert goes through and it runs the write itself. Same key with a different
request is a conflict. Without a key, the write simply runs.

The key is looked up before the write runs, so before any check that depends on the time or on
state that can change: a retry gets the original answer, whatever happened meanwhile. That
holds for refusals too: a refusal the write raises (a ProblemError a retry could not cure by
itself: not 429, 500 or 503) is stored under the key, with the write's own changes rolled back
to a savepoint (kept, if the refusal says the ledger recorded something), and the transaction
commits the record; a retry replays it. So a retry never turns a refusal into a success, nor a
success into a refusal.
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.errors import RESERVED_MEMBERS, IdempotencyConflict, ProblemError
from mutualcredit.hashing import request_hash

_CLAIM = text(
    """
    INSERT INTO idempotency_records (api_key_id, key, request_hash)
    VALUES (:api_key_id, :key, :request_hash)
    ON CONFLICT (api_key_id, key) DO NOTHING
    """
)
_FETCH = text(
    """
    SELECT request_hash, status_code, response FROM idempotency_records
    WHERE api_key_id = :api_key_id AND key = :key
    """
)
_STORE = text(
    """
    UPDATE idempotency_records SET status_code = :status_code, response = CAST(:response AS jsonb)
    WHERE api_key_id = :api_key_id AND key = :key
    """
)


class Outcome(BaseModel):
    """The answer: a success's body, or (status 4xx) a stored refusal's problem body."""

    status_code: int
    body: Any
    replayed: bool


class StoredRefusal(ProblemError):
    """A refusal recorded under its Idempotency-Key, sent again on a retry: the first answer's
    status, code and members, marked `Idempotent-Replayed` as a replayed success is."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail"))
        self.status = problem["status"]  # type: ignore[misc]
        self.code = problem["code"]  # type: ignore[misc]
        self.title = problem["title"]  # type: ignore[misc]
        self.fields = {k: v for k, v in problem.items() if k not in RESERVED_MEMBERS}
        self.headers["Idempotent-Replayed"] = "true"


def _remembered(exc: ProblemError) -> bool:
    """A refusal is stored unless waiting alone could change the answer."""
    return not exc.retryable and exc.status < 500


async def run(
    session: AsyncSession,
    *,
    api_key_id: uuid.UUID,
    key: str | None,
    request_hash: bytes,
    status_code: int,
    write: Callable[[], Awaitable[BaseModel]],
    secret_fields: tuple[str, ...] = (),
) -> Outcome:
    """Runs `write` at most once per key. `secret_fields` are blanked in the stored copy: a
    secret is shown in the first response only and is never written to the database."""
    if key is None:
        result = await write()
        return Outcome(status_code=status_code, body=result.model_dump(mode="json"), replayed=False)

    params = {"api_key_id": api_key_id, "key": key}
    claimed = await session.execute(_CLAIM, {**params, "request_hash": request_hash})
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        row = (await session.execute(_FETCH, params)).one()
        if row.request_hash != request_hash:
            raise IdempotencyConflict(
                "This Idempotency-Key was used with a different request", key=key
            )
        if row.status_code >= 400:
            raise StoredRefusal(row.response)
        return Outcome(status_code=row.status_code, body=row.response, replayed=True)

    savepoint = await session.begin_nested()
    try:
        result = await write()
    except ProblemError as exc:
        if not _remembered(exc):
            raise
        if exc.commit:
            await savepoint.commit()
        else:
            await savepoint.rollback()
        problem = exc.to_problem()
        await session.execute(
            _STORE,
            {**params, "status_code": exc.status, "response": orjson.dumps(problem).decode()},
        )
        # The record must outlive the refusal: the request's transaction commits it.
        exc.commit = True
        raise
    await savepoint.commit()
    body = result.model_dump(mode="json")
    stored = {**body, **dict.fromkeys(secret_fields)}
    await session.execute(
        _STORE, {**params, "status_code": status_code, "response": orjson.dumps(stored).decode()}
    )
    return Outcome(status_code=status_code, body=body, replayed=False)


async def respond(
    session: AsyncSession,
    *,
    api_key_id: uuid.UUID,
    key: str | None,
    scope: str,
    payload: Any,
    status_code: int,
    write: Callable[[], Awaitable[BaseModel]],
    secret_fields: tuple[str, ...] = (),
) -> Outcome:
    """`run` with the request hash computed from an endpoint scope and the validated payload."""
    return await run(
        session,
        api_key_id=api_key_id,
        key=key,
        request_hash=request_hash(scope, payload),
        status_code=status_code,
        write=write,
        secret_fields=secret_fields,
    )
