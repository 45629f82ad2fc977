"""Liveness and readiness, for a load balancer or an orchestrator."""

from fastapi import APIRouter, Request
from pydantic import BaseModel

from mutualcredit.apidoc import answers
from mutualcredit.db import write_connection
from mutualcredit.errors import ServiceUnavailable
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.migrate import head_revision

router = APIRouter(route_class=StrictJSONRoute, tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str | None


@router.get(
    "/healthz",
    response_model=Health,
    summary="The process is alive",
    description="Anyone, no key: the liveness probe. The process answers; nothing else is "
    "asked (not the database).",
)
@answers(database=False)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database answers and its schema is at the migrations' head",
    description="Anyone, no key: the readiness probe. Ready when the database answers and its "
    "schema is at the migrations' head; otherwise 503 `service_unavailable`, which says why.",
)
@answers(ServiceUnavailable, database=False)
async def readyz(request: Request) -> Readiness:
    state = request.app.state
    # On the write path's pool, with the connect timeout as the query's too: one trivial
    # statement on a stalled link answers "not ready" within seconds, not after the stall.
    timeout = state.settings.database_connect_timeout_seconds
    try:
        async with write_connection(state.fast_pool, state.pool_timeout) as conn:
            revision = await conn.fetchval(
                "SELECT version_num FROM alembic_version", timeout=timeout
            )
    except Exception as exc:
        raise ServiceUnavailable("The database does not answer") from exc
    head = head_revision()
    if revision != head:
        raise ServiceUnavailable(
            f"The schema is at {revision}, the code needs {head}: run 'mutualcredit migrate'",
            schema_revision=revision,
        )
    return Readiness(status="ready", database="ok", schema_revision=revision)
