"""Network health: the numbers an operator needs to decide limits, as ledger queries.

Member accounts only (system accounts such as a treasury would distort every figure); trades of
kind transfer and request (reversals and write-offs are corrections, not circulation), bucketed
by the time they were entered (UTC). Ratios are exact decimals rendered from integers.
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
      AND NOT EXISTS (SELECT 1 FROM entries e
                      WHERE e.account_id = a.id AND e.booked_at >= :quiet_since)
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
    )
