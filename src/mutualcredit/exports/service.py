"""CSV exports: an account's statement and a network's trades for a period.

Amounts appear twice: as integer minor units (exact, for machines) and as a decimal in the
network's unit (exact too: rendered from the integer and the scale, never through a float).
Exports are built page by page over the same keyset queries as the API, up to MAX_ROWS; a
longer period is refused with a hint to split it.
"""

import csv
import io
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.accounts import service as accounts
from mutualcredit.errors import ProblemError
from mutualcredit.trades import repository as trades

MAX_ROWS = 200_000
PAGE = 1000


class ExportTooLarge(ProblemError):
    status = 422
    code = "export_too_large"
    title = "The period holds too many rows for one export"


def decimal(amount: int | None, scale: int) -> str:
    if amount is None:
        return ""
    return f"{Decimal(amount).scaleb(-scale):.{scale}f}"


def _too_large() -> ExportTooLarge:
    return ExportTooLarge(f"At most {MAX_ROWS} rows per export: narrow 'from' and 'to'")


async def statement_csv(
    session: AsyncSession,
    account_id: uuid.UUID,
    scale: int,
    since: datetime | None,
    until: datetime | None,
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "booked_at",
            "trade_id",
            "counterparty",
            "description",
            "external_ref",
            "amount",
            "amount_decimal",
            "balance_after",
            "balance_after_decimal",
        ]
    )
    cursor: str | None = None
    written = 0
    while True:
        rows, cursor = await accounts.list_entries(
            session, account_id, since=since, until=until, cursor=cursor, limit=PAGE
        )
        for r in rows:
            writer.writerow(
                [
                    r.booked_at.isoformat(),
                    r.trade_id,
                    r.counterparty,
                    r.description,
                    r.external_ref or "",
                    r.amount,
                    decimal(r.amount, scale),
                    r.balance_after,
                    decimal(r.balance_after, scale),
                ]
            )
        written += len(rows)
        if written > MAX_ROWS:
            raise _too_large()
        if cursor is None:
            return out.getvalue()


async def trades_csv(
    session: AsyncSession,
    network_id: uuid.UUID,
    scale: int,
    since: datetime | None,
    until: datetime | None,
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = [
        "id",
        "created_at",
        "resolved_at",
        "status",
        "kind",
        "payer",
        "payee",
        "amount",
        "amount_decimal",
        "posted_amount",
        "posted_amount_decimal",
        "description",
        "external_ref",
        "reverses_trade_id",
        "reason",
        "created_by",
    ]
    writer.writerow(columns)
    after: tuple[datetime, uuid.UUID] | None = None
    written = 0
    while True:
        rows = await trades.list_trades(
            session,
            network_id,
            account_id=None,
            status=None,
            since=since,
            until=until,
            after=after,
            limit=PAGE,
        )
        for t in rows:
            writer.writerow(
                [
                    t["id"],
                    t["created_at"].isoformat(),
                    t["resolved_at"].isoformat() if t["resolved_at"] else "",
                    t["status"],
                    t["kind"],
                    t["payer"],
                    t["payee"],
                    t["amount"],
                    decimal(t["amount"], scale),
                    "" if t["posted_amount"] is None else t["posted_amount"],
                    decimal(t["posted_amount"], scale),
                    t["description"],
                    t["external_ref"] or "",
                    t["reverses_trade_id"] or "",
                    t["reason"] or "",
                    t["created_by"],
                ]
            )
        written += len(rows)
        if written > MAX_ROWS:
            raise _too_large()
        if len(rows) < PAGE:
            return out.getvalue()
        after = (rows[-1]["created_at"], rows[-1]["id"])
