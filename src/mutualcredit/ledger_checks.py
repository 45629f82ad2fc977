"""The derived checks every test suite and audit should run, as one query each.

They re-derive, from the entries, what the constraints and triggers are meant to guarantee; a
non-empty result means the ledger is wrong (or was edited around its guards).
"""

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHECKS: dict[str, str] = {
    "network balances sum to zero": """
        SELECT n.code FROM accounts a JOIN networks n ON n.id = a.network_id
        GROUP BY n.code
        HAVING sum(a.balance) <> 0 OR sum(a.pending_debits) <> sum(a.pending_credits)
    """,
    "each balance equals the sum of its entries": """
        SELECT a.code FROM accounts a
        LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id) e
               ON e.account_id = a.id
        WHERE a.balance <> coalesce(e.total, 0)
    """,
    "each entry's balance_after follows the previous one": """
        SELECT id::text FROM (
            SELECT id, balance_after, amount,
                   lag(balance_after, 1, 0::bigint)
                       OVER (PARTITION BY account_id ORDER BY booked_at, id) AS before
            FROM entries) s
        WHERE balance_after <> before + amount
    """,
    "each trade's entries sum to zero": """
        SELECT trade_id::text FROM entries GROUP BY trade_id HAVING sum(amount) <> 0
    """,
    "each posted trade has its two entries for posted_amount": """
        SELECT t.id::text FROM trades t
        LEFT JOIN entries e ON e.trade_id = t.id
        WHERE t.status = 'posted'
        GROUP BY t.id, t.posted_amount, t.payer_id, t.payee_id
        HAVING count(e.id) <> 2
            OR coalesce(sum(e.amount) FILTER (WHERE e.account_id = t.payee_id), 0)
               <> t.posted_amount
            OR coalesce(sum(e.amount) FILTER (WHERE e.account_id = t.payer_id), 0)
               <> -t.posted_amount
    """,
    "only posted trades have entries": """
        SELECT DISTINCT t.id::text FROM trades t JOIN entries e ON e.trade_id = t.id
        WHERE t.status <> 'posted'
    """,
    "holds equal the pending trades": """
        SELECT a.code FROM accounts a
        LEFT JOIN (SELECT payer_id, sum(amount) AS held FROM trades
                   WHERE status = 'pending' GROUP BY payer_id) d ON d.payer_id = a.id
        LEFT JOIN (SELECT payee_id, sum(amount) AS held FROM trades
                   WHERE status = 'pending' GROUP BY payee_id) c ON c.payee_id = a.id
        WHERE a.pending_debits <> coalesce(d.held, 0) OR a.pending_credits <> coalesce(c.held, 0)
    """,
    # Beyond a limit is possible only when an operator lowered the limit below what the account
    # used, or booked past it with a recorded override: never by a trade on its own.
    "no account beyond its limits without a recorded cause": """
        SELECT a.code FROM accounts a
        WHERE (a.balance - a.pending_debits < -a.credit_limit
               OR (a.balance_max IS NOT NULL AND a.balance + a.pending_credits > a.balance_max))
          AND NOT EXISTS (
              SELECT 1 FROM limit_changes c
              WHERE c.account_id = a.id AND c.kind <> 'open'
                AND (c.credit_limit_after < c.credit_limit_before
                     OR c.balance_max_after
                        < coalesce(c.balance_max_before, c.balance_max_after + 1)))
          AND NOT EXISTS (
              SELECT 1 FROM trades t
              WHERE t.limit_override AND a.id IN (t.payer_id, t.payee_id))
    """,
    # Fees: every fee trade is one charge of one rule, from the charged account to the rule's
    # treasury, for the amount the charge says; and every charge that took something has it.
    "each fee trade is its charge": """
        SELECT t.id::text FROM trades t
        LEFT JOIN fee_charges c ON c.trade_id = t.id
        WHERE t.kind = 'fee'
          AND (c.id IS NULL OR t.status <> 'posted' OR c.amount <> t.amount
               OR c.account_id <> t.payer_id OR c.treasury_id <> t.payee_id)
    """,
    "each fee charge that took something has its fee trade": """
        SELECT c.id::text FROM fee_charges c
        LEFT JOIN trades t ON t.id = c.trade_id AND t.kind = 'fee'
        WHERE c.amount > 0 AND t.id IS NULL
    """,
    "each levy was charged on a posted trade of its network": """
        SELECT c.id::text FROM fee_charges c
        JOIN trades t ON t.id = c.cause_trade_id
        WHERE t.status <> 'posted' OR t.network_id <> c.network_id
           OR t.kind NOT IN ('transfer', 'request')
    """,
    "no key both accepted and refused": """
        SELECT t.key FROM trades t
        JOIN trade_rejections r ON r.network_id = t.network_id AND r.key = t.key
    """,
}


@dataclass
class AuditReport:
    failures: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


async def run_checks(conn: AsyncConnection) -> AuditReport:
    report = AuditReport()
    for name, sql in CHECKS.items():
        rows = [str(r[0]) for r in (await conn.execute(text(sql))).all()]
        if rows:
            report.failures[name] = rows[:20]
    return report
