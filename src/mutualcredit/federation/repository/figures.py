"""SQL of a link's figures: its two accounts as the ledger holds them, and as the link's
transfer records say they should be (ledgers.py states the rule), in one statement so that both
come from one snapshot."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation.repository.rows import AccountFigures, LinkRow, of

# The records are the accepted transfers (both chains) and what is in flight. A transfer an
# operator resolved as posted, with no word of the peer yet (or against it: disputed), is in the
# ledger and in no chain: the ledger then differs from the records, so no checkpoint is signed
# and reconciliation does not agree until the peer's word confirms it (accepted, in the chain).
_BOOKED = "status = 'accepted'"

_FIGURES = f"""
    WITH t AS (
        SELECT
            CAST(coalesce(sum(amount_sent) FILTER (
                WHERE direction = 'out' AND {_BOOKED}), 0) AS bigint) AS out_accepted,
            CAST(coalesce(sum(amount_received) FILTER (
                WHERE direction = 'in' AND status = 'accepted'), 0) AS bigint) AS in_accepted,
            CAST(coalesce(sum(amount_sent) FILTER (
                WHERE direction = 'out' AND status = 'prepared'), 0) AS bigint) AS out_in_flight,
            CAST(coalesce(sum(amount_received) FILTER (
                WHERE direction = 'in' AND status = 'forwarded'), 0) AS bigint) AS in_forwarded,
            CAST(coalesce(sum(amount_sent) FILTER (
                WHERE kind = 'settlement' AND direction = 'out' AND {_BOOKED}), 0)
                AS bigint) AS settled_out,
            CAST(coalesce(sum(amount_received) FILTER (
                WHERE kind = 'settlement' AND direction = 'in' AND status = 'accepted'), 0)
                AS bigint) AS settled_in,
            CAST(coalesce(sum(amount_sent) FILTER (
                WHERE kind = 'settlement' AND direction = 'out' AND status = 'prepared'), 0)
                AS bigint) AS settling_out
        FROM transfers WHERE link_id = :l
    )
    SELECT a.code, a.balance, a.pending_debits, a.pending_credits,
           CASE WHEN a.id = :link_account THEN t.out_accepted - t.in_accepted
                ELSE t.settled_in - t.settled_out END AS records_balance,
           CASE WHEN a.id = :link_account THEN t.in_forwarded
                ELSE t.settling_out END AS records_pending_debits,
           CASE WHEN a.id = :link_account THEN t.out_in_flight
                ELSE 0 END AS records_pending_credits
    FROM accounts a CROSS JOIN t
    WHERE a.id IN (:link_account, :settlement_account)
    ORDER BY a.id = :link_account DESC
"""


async def account_figures(session: AsyncSession, link: LinkRow) -> list[AccountFigures]:
    """The link account, then the settlement account: each as the ledger holds it and as the
    link's transfers say it should be."""
    rows = await session.execute(
        text(_FIGURES),
        {
            "l": link.id,
            "link_account": link.account_id,
            "settlement_account": link.settlement_account_id,
        },
    )
    return [of(AccountFigures, r) for r in rows.mappings()]
