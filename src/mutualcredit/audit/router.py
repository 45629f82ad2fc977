from typing import Annotated

from fastapi import APIRouter, Query

from mutualcredit.audit import service
from mutualcredit.audit.schemas import AuditEntry, Verification
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.db import Session
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.networks.dependencies import NetworkId
from mutualcredit.pagination import Cursor, PageSize
from mutualcredit.schemas import Page

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}/audit",
    tags=["audit"],
)


@router.get(
    "", response_model=Page[AuditEntry], summary="The network's audit log (operator, auditor)"
)
async def list_audit(
    network: str,
    net_id: NetworkId,
    session: Session,
    principal: CurrentPrincipal,
    action: Annotated[str | None, Query(max_length=100)] = None,
    subject_id: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Cursor = None,
    limit: PageSize = 100,
) -> Page[AuditEntry]:
    """An operator or auditor of the network (or the platform). The network's audit log, oldest
    first: who, what, when, why and the fields that changed, with each record's place in the hash
    chain; optionally of one `action` or one `subject_id`, a page at a time."""
    require_reader(principal)
    items, next_cursor = await service.list_records(
        session, net_id, action=action, subject_id=subject_id, cursor=cursor, limit=limit
    )
    return Page[AuditEntry](items=items, next_cursor=next_cursor)


@router.get(
    "/verify",
    response_model=Verification,
    summary="Recompute the hash chain; report the first broken record (operator, auditor)",
)
async def verify_audit(network: str, session: Session, principal: CurrentPrincipal) -> Verification:
    """An operator or auditor of the network (or the platform). Recomputes the audit log's hash
    chain from its genesis and names the first broken record (altered, missing, or a truncated
    tail); keep the reported `head_hash` elsewhere to detect a rewrite of the whole chain."""
    net = await networks.get_network(session, principal, network)
    require_reader(principal)
    return await service.verify(session, net.id, net.code)
