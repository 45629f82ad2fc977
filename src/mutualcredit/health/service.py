"""Network health: the numbers an operator needs to decide limits, as ledger queries.

Member accounts only (system accounts such as a treasury would distort every figure); trades of
kind transfer and request (reversals and write-offs are corrections, not circulation; fees are
the network's income, not circulation), bucketed by the time they were entered (UTC). Ratios are
exact decimals rendered from integers.

Fee income is read from the ledger's own tables (fee_rules, fee_charges, trades) with SQL of its
own, not through the fees package, which sits beside this one (the import contract "domains").
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.errors import ValidationProblem
from mutualcredit.health.schemas import (
    AccountCounts,
    Band,
    Bucket,
    Dormant,
    FeeIncome,
    LimitUse,
    NetworkHealth,
    Totals,
    Velocity,
)
from mutualcredit.networks.models import Network

Period = Literal["day", "week", "month"]
DEFAULT_SPAN: dict[str, timedelta] = {
    "day": timedelta(days=30),
    "week": timedelta(weeks=12),
    "month": timedelta(days=365),
}
MAX_BUCKETS = 400
CIRCULATING = "('transfer', 'request')"

_SERIES = text(
    f"""
    WITH buckets AS (
        SELECT generate_series(date_trunc(:period, CAST(:since AS timestamptz), 'UTC'),
                               CAST(:until AS timestamptz) - interval '1 microsecond',
                               CAST('1 ' || :period AS interval)) AS start
    ), traded AS (
        SELECT date_trunc(:period, t.created_at, 'UTC') AS start, t.payer_id, t.payee_id,
               t.posted_amount
        FROM trades t
        WHERE t.network_id = :network_id AND t.status = 'posted' AND t.kind IN {CIRCULATING}
          AND t.created_at >= :since AND t.created_at < :until
    ), active AS (
        SELECT start, count(DISTINCT account_id) AS accounts FROM (
            SELECT start, payer_id AS account_id FROM traded
            UNION ALL SELECT start, payee_id FROM traded) parties
        GROUP BY start
    ), sums AS (
        SELECT start, count(*) AS trades, sum(posted_amount) AS volume FROM traded GROUP BY start
    )
    SELECT b.start, coalesce(s.trades, 0) AS trades, coalesce(s.volume, 0) AS volume,
           coalesce(a.accounts, 0) AS active_accounts
    FROM buckets b LEFT JOIN sums s USING (start) LEFT JOIN active a USING (start)
    ORDER BY b.start
    """
)
_TOTAL_ACTIVE = text(
    f"""
    SELECT count(DISTINCT account_id) FROM (
        SELECT unnest(ARRAY[t.payer_id, t.payee_id]) AS account_id FROM trades t
        WHERE t.network_id = :network_id AND t.status = 'posted' AND t.kind IN {CIRCULATING}
          AND t.created_at >= :since AND t.created_at < :until) parties
    """
)
_ACCOUNTS = text(
    """
    SELECT count(*) AS members,
           count(*) FILTER (WHERE status = 'active') AS active,
           count(*) FILTER (WHERE status = 'suspended') AS suspended,
           coalesce(sum(balance) FILTER (WHERE balance > 0), 0) AS positive_total,
           count(*) FILTER (WHERE balance - pending_debits < -credit_limit) AS credit_beyond,
           count(*) FILTER (WHERE balance - pending_debits = -credit_limit
                            AND (credit_limit > 0 OR balance < 0)) AS credit_at,
           count(*) FILTER (WHERE balance - pending_debits > -credit_limit AND credit_limit > 0
                            AND (pending_debits - balance) * 100 >= :near * credit_limit)
               AS credit_near,
           count(*) FILTER (WHERE balance_max IS NOT NULL
                            AND balance + pending_credits > balance_max) AS max_beyond,
           count(*) FILTER (WHERE balance_max > 0
                            AND balance + pending_credits = balance_max) AS max_at,
           count(*) FILTER (WHERE balance_max > 0 AND balance + pending_credits < balance_max
                            AND (balance + pending_credits) * 100 >= :near * balance_max)
               AS max_near
    FROM accounts
    WHERE network_id = :network_id AND kind = 'member' AND status <> 'closed'
    """
)
_DORMANT = text(
    """
    SELECT count(*), coalesce(sum(abs(a.balance)), 0) FROM accounts a
    WHERE a.network_id = :network_id AND a.kind = 'member' AND a.status <> 'closed'
      AND a.balance <> 0
      AND NOT EXISTS (SELECT 1 FROM entries e JOIN trades t ON t.id = e.trade_id
                      WHERE e.account_id = a.id AND e.booked_at >= :quiet_since
                        AND t.kind <> 'fee')
    """
)
# Charges by the time they were booked: the range is read on the index fee_charges (network_id,
# created_at, id). Refunds are the reversals entered in the period, found on trades (network_id,
# created_at, id) as the series above, each joined to its charge by the unique trade_id.
_FEES = text(
    """
    WITH charged AS (
        SELECT c.rule_id, count(*) AS charges, sum(c.amount) AS amount, sum(c.waived) AS waived
        FROM fee_charges c
        WHERE c.network_id = :network_id AND c.created_at >= :since AND c.created_at < :until
        GROUP BY c.rule_id
    ), refunded AS (
        SELECT c.rule_id, sum(r.posted_amount) AS amount
        FROM trades r JOIN fee_charges c ON c.trade_id = r.reverses_trade_id
        WHERE r.network_id = :network_id AND r.kind = 'reversal' AND r.status = 'posted'
          AND r.created_at >= :since AND r.created_at < :until
        GROUP BY c.rule_id
    )
    SELECT f.code AS rule, f.kind, coalesce(ch.charges, 0) AS charges,
           coalesce(ch.amount, 0) AS amount, coalesce(ch.waived, 0) AS waived,
           coalesce(rf.amount, 0) AS refunded
    FROM fee_rules f
    LEFT JOIN charged ch ON ch.rule_id = f.id
    LEFT JOIN refunded rf ON rf.rule_id = f.id
    WHERE f.network_id = :network_id
      AND (ch.rule_id IS NOT NULL OR rf.rule_id IS NOT NULL
           OR (f.starts_at < :until AND (f.ends_at IS NULL OR f.ends_at > :since)))
    ORDER BY f.code
    """
)
_BALANCES = text(
    """
    SELECT balance FROM accounts
    WHERE network_id = :network_id AND kind = 'member' AND status <> 'closed'
    """
)


def ratio(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    value = (Decimal(numerator) / Decimal(denominator)).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_EVEN
    )
    return str(value)


def bands(unit: int) -> list[tuple[int | None, int | None]]:
    """Bands in multiples of `unit` (the default credit limit): below zero [low, high), zero,
    above zero (low, high]."""
    half = max(unit // 2, 1)
    return [
        (None, -2 * unit),
        (-2 * unit, -unit),
        (-unit, -half),
        (-half, 0),
        (0, 0),
        (0, half),
        (half, unit),
        (unit, 2 * unit),
        (2 * unit, None),
    ]


def band_of(balance: int, edges: list[tuple[int | None, int | None]]) -> int:
    for index, (low, high) in enumerate(edges):
        if balance < 0 and (low is None or balance >= low) and high is not None and balance < high:
            return index
        if balance == 0 and low == 0 and high == 0:
            return index
        if balance > 0 and low is not None and balance > low and (high is None or balance <= high):
            return index
    raise AssertionError(f"no band for {balance}")  # the bands cover every integer


async def network_health(
    session: AsyncSession,
    network: Network,
    *,
    period: Period,
    since: datetime | None,
    until: datetime | None,
    near_percent: int,
    dormant_days: int,
) -> NetworkHealth:
    now = datetime.now(UTC)
    until = until or now
    since = since or until - DEFAULT_SPAN[period]
    if since >= until:
        raise ValidationProblem("from: must be before 'to'")
    span_days = {"day": 1, "week": 7, "month": 28}[period]
    if (until - since).days / span_days > MAX_BUCKETS:
        raise ValidationProblem(f"from, to: at most {MAX_BUCKETS} {period}s at a time")
    params = {"network_id": network.id, "since": since, "until": until, "period": period}

    series = [
        Bucket(
            start=r.start,
            trades=int(r.trades),
            volume=int(r.volume),
            active_accounts=int(r.active_accounts),
        )
        for r in (await session.execute(_SERIES, params)).all()
    ]
    total_active = int((await session.execute(_TOTAL_ACTIVE, params)).scalar_one())
    volume = sum(b.volume for b in series)
    totals = Totals(
        trades=sum(b.trades for b in series), volume=volume, active_accounts=total_active
    )

    row = (await session.execute(_ACCOUNTS, {"network_id": network.id, "near": near_percent})).one()
    members = int(row.members)

    def use(beyond: int, at: int, near: int) -> LimitUse:
        return LimitUse(
            beyond=beyond,
            at=at,
            near=near,
            share_at_or_beyond=ratio(beyond + at, members) or "0",
            share_near=ratio(near, members) or "0",
        )

    unit = network.default_credit_limit or 10**network.scale
    edges = bands(unit)
    counts = [0] * len(edges)
    for (balance,) in (await session.execute(_BALANCES, {"network_id": network.id})).all():
        counts[band_of(int(balance), edges)] += 1

    quiet_since = now - timedelta(days=dormant_days)
    dormant_count, dormant_total = (
        await session.execute(_DORMANT, {"network_id": network.id, "quiet_since": quiet_since})
    ).one()

    fees = [
        FeeIncome(
            rule=r.rule,
            kind=r.kind,
            charges=int(r.charges),
            amount=int(r.amount),
            waived=int(r.waived),
            refunded=int(r.refunded),
        )
        for r in (await session.execute(_FEES, params)).all()
    ]

    return NetworkHealth(
        network=network.code,
        as_of=now,
        period=period,
        since=since,
        until=until,
        series=series,
        totals=totals,
        accounts=AccountCounts(
            members=members, active=int(row.active), suspended=int(row.suspended)
        ),
        velocity=Velocity(
            volume=volume,
            positive_balance_total=int(row.positive_total),
            ratio=ratio(volume, int(row.positive_total)),
        ),
        near_percent=near_percent,
        credit_limit=use(int(row.credit_beyond), int(row.credit_at), int(row.credit_near)),
        balance_max=use(int(row.max_beyond), int(row.max_at), int(row.max_near)),
        balance_bands=[
            Band(low=low, high=high, accounts=count)
            for (low, high), count in zip(edges, counts, strict=True)
        ],
        dormant=Dormant(
            days=dormant_days, accounts=int(dormant_count), balance_abs_total=int(dormant_total)
        ),
        fees=fees,
    )
