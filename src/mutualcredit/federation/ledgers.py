"""A link's ledger against its records: each side's two link accounts must hold what the link's
transfers add up to.

The link account `link.<peer>` and the settlement account `settlement.<peer>` move with the
link's transfers and with nothing else, so the transfer records say what each must hold:

    link.<peer>        balance          accepted 'out' (amount sent) - accepted 'in' (received)
                       pending_credits  'out' in flight, amount sent: the holds toward it
                       pending_debits   'in' forwarded at a hub, amount received: holds from it
    settlement.<peer>  balance          accepted settlements 'in' (received) - 'out' (sent)
                       pending_debits   settlements 'out' in flight, amount sent
                       pending_credits  0

Any difference is a ledger moved outside the protocol (a local trade to the link account, an
edit of the database), or a transfer an operator resolved as posted that the peer has not
confirmed (resolve.py): in the ledger, in no chain. A statement carries this check (`ledger`);
reconciliation reports both sides' and does not agree while either differs; a checkpoint, which
is computed from the records, is refused while either side's ledger differs from them
(LinkLedgerMismatch, naming the side), so that a signed checkpoint also says both ledgers hold
what it states.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation import repository
from mutualcredit.federation.errors import LinkLedgerMismatch
from mutualcredit.federation.repository import LinkRow

FIGURES = ("balance", "pending_debits", "pending_credits")


async def check(session: AsyncSession, link: LinkRow) -> dict[str, Any]:
    """This side's two link accounts, each as the ledger holds it and as the records say, and
    every figure where they differ (read in one snapshot: repository.account_figures)."""
    accounts: dict[str, Any] = {}
    differences: list[dict[str, Any]] = []
    for row in await repository.account_figures(session, link):
        ledger = {figure: getattr(row, figure) for figure in FIGURES}
        records = {figure: getattr(row, f"records_{figure}") for figure in FIGURES}
        accounts[row.code] = {"ledger": ledger, "records": records}
        differences += [
            {"account": row.code, "figure": f, "ledger": ledger[f], "records": records[f]}
            for f in FIGURES
            if ledger[f] != records[f]
        ]
    return {"agrees": not differences, "accounts": accounts, "differences": differences}


def mismatch(side: str, differences: list[dict[str, Any]]) -> LinkLedgerMismatch:
    """The refusal of a checkpoint while `side`'s ledger differs from its records."""
    said = "; ".join(
        f"{d['account']} {d['figure']} is {d['ledger']} in the ledger, {d['records']} by the"
        " records"
        for d in differences
    )
    return LinkLedgerMismatch(
        f"{side}'s ledger differs from its records of the link: {said}",
        side=side,
        differences=differences,
    )


async def require_agreement(session: AsyncSession, link: LinkRow) -> None:
    """Raises LinkLedgerMismatch (this side's) unless this side's ledger holds what its records
    of the link say."""
    found = await check(session, link)
    if not found["agrees"]:
        raise mismatch(link.network_code, found["differences"])


def peer_mismatch(peer: str, refusal: dict[str, Any]) -> LinkLedgerMismatch:
    """The peer's signed refusal to countersign, its ledger differing from its records, as this
    side reports it: the same code, with `side` the peer. Its `differences` are the peer's word;
    they are passed on only in the shape this side gives its own."""
    differences = refusal.get("differences")
    if isinstance(differences, list) and all(
        isinstance(d, dict) and set(d) == {"account", "figure", "ledger", "records"}
        for d in differences
    ):
        return mismatch(peer, differences)
    return LinkLedgerMismatch(
        f"{peer}'s ledger differs from its records of the link", side=peer, differences=[]
    )
