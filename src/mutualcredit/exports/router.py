from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from mutualcredit.accounts import service as accounts
from mutualcredit.accounts.errors import AccountNotFound
from mutualcredit.apidoc import answers
from mutualcredit.auth.dependencies import CurrentPrincipal
from mutualcredit.auth.permissions import require_reader
from mutualcredit.db import Session
from mutualcredit.errors import ValidationProblem
from mutualcredit.exports import service
from mutualcredit.exports.service import ExportTooLarge
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks import service as networks
from mutualcredit.schemas import Moment

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/networks/{network}",
    tags=["exports"],
)

Since = Annotated[Moment | None, Query(alias="from", description="Inclusive.")]
Until = Annotated[Moment | None, Query(alias="to", description="Exclusive.")]
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV with a header row"}
}


def _csv(body: str, filename: str) -> Response:
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _period(since: datetime | None, until: datetime | None) -> str:
    if since is not None and until is not None and since > until:
        raise ValidationProblem("from: must not be after 'to'")
    return "-".join(d.date().isoformat() for d in (since, until) if d is not None) or "all"


@router.get(
    "/accounts/{account}/statement.csv",
    response_class=Response,
    responses=CSV,
    summary="An account's statement for a period, as CSV",
)
@answers(AccountNotFound, ExportTooLarge)
async def export_statement_csv(
    network: str,
    account: str,
    session: Session,
    principal: CurrentPrincipal,
    since: Since = None,
    until: Until = None,
) -> Response:
    """An operator or auditor of the network (or the platform), or a member key for its own account.
    The account's statement for a period (`from`, `to`) as CSV, amounts in the network's unit.
    Refused with 422 `export_too_large` past 200,000 rows: narrow the period."""
    period = _period(since, until)
    net = await networks.get_network(session, principal, network)
    accounts.check_can_read(principal, account)
    acc = await accounts.get_account(session, net.id, account)
    body = await service.statement_csv(session, acc.id, net.scale, since, until)
    return _csv(body, f"{network}-{account}-{period}.csv")


@router.get(
    "/trades.csv",
    response_class=Response,
    responses=CSV,
    summary="All the network's trades for a period, as CSV (operator, auditor)",
)
@answers(ExportTooLarge)
async def export_trades_csv(
    network: str,
    session: Session,
    principal: CurrentPrincipal,
    since: Since = None,
    until: Until = None,
) -> Response:
    """An operator or auditor of the network (or the platform). Every trade of a period (`from`,
    `to`) as CSV, amounts in the network's unit. Refused with 422 `export_too_large` past 200,000
    rows: narrow the period."""
    period = _period(since, until)
    net = await networks.get_network(session, principal, network)
    require_reader(principal)
    body = await service.trades_csv(session, net.id, net.scale, since, until)
    return _csv(body, f"{network}-trades-{period}.csv")


@router.get(
    "/fee-charges.csv",
    response_class=Response,
    responses=CSV,
    summary="The network's fee charges for a period, as CSV (operator, auditor)",
)
@answers(ExportTooLarge)
async def export_fee_charges_csv(
    network: str,
    session: Session,
    principal: CurrentPrincipal,
    since: Since = None,
    until: Until = None,
    rule: Annotated[
        str | None, Query(max_length=64, description="Only this fee rule's charges (its code).")
    ] = None,
) -> Response:
    """An operator or auditor of the network (or the platform). Every charge of the network's fee
    rules booked in a period (`from`, `to`), of one `rule` if given, in booking order, one row per
    charge: its rule and kind, the account charged, the treasury, the amount booked and the
    amount waived (in minor units and in the network's unit), whether it was booked past a
    limit, its trade (none when wholly waived), and its cause: the trade a levy was charged on,
    or the period boundary (`due_at`) of a membership fee or demurrage. Refused with 422
    `export_too_large` past 200,000 rows: narrow the period."""
    period = _period(since, until)
    net = await networks.get_network(session, principal, network)
    require_reader(principal)
    body = await service.fee_charges_csv(session, net.id, net.scale, since, until, rule)
    return _csv(body, f"{network}-fee-charges-{period}.csv")
