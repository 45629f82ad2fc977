"""CSV exports: an account's statement, a network's trades and its fee charges for a period.

Amounts appear twice: as integer minor units (exact, for machines) and as a decimal in the
network's unit (exact too: rendered from the integer and the scale, never through a float).
Exports are built page by page over the same keyset queries as the API, up to MAX_ROWS; a
longer period is refused with a hint to split it.

Fees are read from the ledger's tables (fee_charges, fee_rules) with SQL of this module's own,
not through the fees package, which sits beside this one (the import contract "domains"). A fee
trade is a trade like any other in the statement and the trades (kind `fee`); the column
`fee_rule`, last so that a reader of the older columns by position still reads them, names the
rule that charged it.
"""

import csv
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
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


# Each trade's kind and, for a fee trade, its rule's code: by primary key, and by the unique
# fee_charges (trade_id), one page's trades at a time.
_KINDS = text(
    """
    SELECT t.id, t.kind, r.code AS fee_rule
    FROM trades t
    LEFT JOIN fee_charges c ON c.trade_id = t.id
    LEFT JOIN fee_rules r ON r.id = c.rule_id
    WHERE t.id = ANY(:ids)
    """
)


async def _kinds(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """Each trade's (kind, fee rule code or '')."""
    if not ids:
        return {}
    rows = await session.execute(_KINDS, {"ids": ids})
    return {r.id: (r.kind, r.fee_rule or "") for r in rows}


# A network's fee charges in booking order, a page at a time: keyset on the index
# fee_charges (network_id, created_at, id).
_CHARGES = text(
    """
    SELECT c.id, c.created_at, r.code AS rule, r.kind, a.code AS account, t.code AS treasury,
           c.amount, c.waived, c.past_limit, c.trade_id, c.cause_trade_id, c.due_at
    FROM fee_charges c
    JOIN fee_rules r ON r.id = c.rule_id
    JOIN accounts a ON a.id = c.account_id
    JOIN accounts t ON t.id = c.treasury_id
    WHERE c.network_id = :network_id
      AND c.created_at >= coalesce(CAST(:since AS timestamptz), '-infinity')
      AND c.created_at < coalesce(CAST(:until AS timestamptz), 'infinity')
      AND (CAST(:rule AS text) IS NULL OR r.code = :rule)
      AND (c.created_at, c.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS bigint))
    ORDER BY c.created_at, c.id
    LIMIT :limit
    """
)


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
            "kind",
            "fee_rule",
        ]
    )
    cursor: str | None = None
    written = 0
    while True:
        rows, cursor = await accounts.list_entries(
            session, account_id, since=since, until=until, cursor=cursor, limit=PAGE
        )
        kinds = await _kinds(session, [r.trade_id for r in rows])
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
                    *kinds[r.trade_id],
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
        "fee_rule",
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
        kinds = await _kinds(session, [t["id"] for t in rows if t["kind"] == "fee"])
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
                    kinds[t["id"]][1] if t["id"] in kinds else "",
                ]
            )
        written += len(rows)
        if written > MAX_ROWS:
            raise _too_large()
        if len(rows) < PAGE:
            return out.getvalue()
        after = (rows[-1]["created_at"], rows[-1]["id"])


async def fee_charges_csv(
    session: AsyncSession,
    network_id: uuid.UUID,
    scale: int,
    since: datetime | None,
    until: datetime | None,
    rule: str | None,
) -> str:
    """Every charge of the network's fee rules booked in the period (of `rule` only, if given),
    in booking order: a wholly waived periodic charge too, with amount 0 and no trade."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "created_at",
            "rule",
            "kind",
            "account",
            "treasury",
            "amount",
            "amount_decimal",
            "waived",
            "waived_decimal",
            "past_limit",
            "trade_id",
            "cause_trade_id",
            "due_at",
        ]
    )
    params: dict[str, Any] = {
        "network_id": network_id,
        "since": since,
        "until": until,
        "rule": rule,
        "after_at": datetime.min.replace(tzinfo=UTC),
        "after_id": 0,
        "limit": PAGE,
    }
    written = 0
    while True:
        rows = (await session.execute(_CHARGES, params)).all()
        for c in rows:
            writer.writerow(
                [
                    c.created_at.isoformat(),
                    c.rule,
                    c.kind,
                    c.account,
                    c.treasury,
                    c.amount,
                    decimal(c.amount, scale),
                    c.waived,
                    decimal(c.waived, scale),
                    "true" if c.past_limit else "false",
                    c.trade_id or "",
                    c.cause_trade_id or "",
                    c.due_at.isoformat() if c.due_at else "",
                ]
            )
        written += len(rows)
        if written > MAX_ROWS:
            raise _too_large()
        if len(rows) < PAGE:
            return out.getvalue()
        params["after_at"], params["after_id"] = rows[-1].created_at, rows[-1].id
