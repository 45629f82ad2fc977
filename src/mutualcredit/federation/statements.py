"""A link's records: each side's statement, their reconciliation, and checkpoints both sign.

A statement is one side's record of a link: both chains of accepted transfers, in chain order
with their hashes, the link account's figures, what is in flight, and the side's ledger against
its records (ledgers.py). Reconciliation compares this side's with the peer's, entry by entry,
and reports both sides' ledgers against their records; it agrees only when the chains are the
same and neither ledger differs. A checkpoint is a point of the records both sides sign, and
each side refuses to sign it while its own ledger differs from its records: the initiator
before it signs, the peer before it countersigns (its signed refusal names it as the side).
"""

import uuid
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.auth.permissions import require_operator, require_reader
from mutualcredit.auth.service import Principal
from mutualcredit.federation import crypto, ledgers, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    CheckpointMismatch,
    LinkLedgerMismatch,
    PeerUnreachable,
)
from mutualcredit.federation.keys import signer
from mutualcredit.federation.links import link_to
from mutualcredit.federation.peers import PeerContext, call_peer
from mutualcredit.federation.protocol import FED
from mutualcredit.federation.repository import CheckpointRow, LinkRow, TransferRow
from mutualcredit.federation.schemas import CheckpointView


def _entry(transfer: TransferRow) -> dict[str, Any]:
    msg = transfer.message
    assert transfer.chain_hash is not None  # accepted: in the chain
    return {
        "seq": transfer.seq,
        "transfer_id": str(msg.transfer_id),
        "kind": msg.kind,
        "payer": msg.payer,
        "payee": msg.payee,
        "amount_sent": msg.amount_sent,
        "amount_received": msg.amount_received,
        "rate": {"num": msg.rate.num, "den": msg.rate.den, "version": msg.rate.version},
        "reference": msg.reference,
        "hash": crypto.b64e(transfer.chain_hash),
    }


def _resolved(transfer: TransferRow) -> dict[str, Any]:
    return {
        "transfer_id": str(transfer.message.transfer_id),
        "status": transfer.status,
        "resolution": transfer.resolution,
        "resolution_reason": transfer.resolution_reason,
        "peer_decision": transfer.peer_decision,
        "amount_sent": transfer.message.amount_sent,
        "amount_received": transfer.message.amount_received,
    }


async def statement(session: AsyncSession, link: LinkRow) -> dict[str, Any]:
    """The link's accepted transfers in each direction, in chain order, with hashes; the link
    account's figures; and `ledger`: both link accounts as the ledger holds them and as the
    records say (ledgers.check). 'in' chain positions are ours; 'out' ones come from the peer's
    receipts. `resolved`: what this side's operators resolved without the peer's word (or
    against it: disputed), which is in no chain."""
    chains = {
        direction: [_entry(t) for t in await repository.accepted_chain(session, link.id, direction)]
        for direction in ("in", "out")
    }
    ledger = await ledgers.check(session, link)
    account = ledger["accounts"][link.account_code]["ledger"]
    count, amount = await repository.in_flight(session, link.id)
    return {
        "network": link.network_code,
        "peer": link.peer_code,
        "in": chains["in"],
        "out": chains["out"],
        "balance": account["balance"],
        "pending_debits": account["pending_debits"],
        "pending_credits": account["pending_credits"],
        "in_flight": {"count": count, "amount": amount},
        "ledger": ledger,
        "resolved": [_resolved(t) for t in await repository.resolved_by_operator(session, link.id)],
    }


def _frac(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def _compare(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], chain: str
) -> list[dict[str, Any]]:
    mine = {e["seq"]: e for e in ours}
    other = {e["seq"]: e for e in theirs}
    differences = []
    for seq in sorted(set(mine) | set(other)):
        a, b = mine.get(seq), other.get(seq)
        if a != b:
            differences.append(
                {"kind": "chain", "chain": chain, "seq": seq, "ours": a, "theirs": b}
            )
    return differences


def _resolutions(stmt: dict[str, Any], side: str) -> list[dict[str, Any]]:
    """One side's transfers that its operators resolved, as differences: `resolved` while the
    peer has not confirmed it (no value moved by it on the peer's side yet, as far as that
    side knows), `disputed` once the peer decided the opposite."""
    return [
        {"kind": "disputed" if r["status"] == "disputed" else "resolved", "side": side, **r}
        for r in stmt.get("resolved") or []
    ]


def _balances(stmt: dict[str, Any]) -> tuple[int, int, Fraction]:
    """From one side's statement: that side's link balance (its units), the peer's (the peer's
    units), and the rounding remainder (in the peer's units) kept on the link."""
    own = sum(e["amount_sent"] for e in stmt["out"]) - sum(e["amount_received"] for e in stmt["in"])
    peer = sum(e["amount_sent"] for e in stmt["in"]) - sum(
        e["amount_received"] for e in stmt["out"]
    )
    remainder = sum(
        (
            Fraction(e["amount_sent"] * e["rate"]["num"], e["rate"]["den"]) - e["amount_received"]
            for e in stmt["out"]
        ),
        Fraction(0),
    ) + sum(
        (
            e["amount_sent"] - Fraction(e["amount_received"] * e["rate"]["den"], e["rate"]["num"])
            for e in stmt["in"]
        ),
        Fraction(0),
    )
    return own, peer, remainder


async def fetch_peer_statement(
    fed: Federation, session: AsyncSession, link: LinkRow
) -> dict[str, Any]:
    """The peer's statement of the link (a signed call)."""
    sign = await signer(fed, session, link.network_id)
    keys = await repository.peer_keys(session, link.id)
    answer = await call_peer(fed, sign, link, keys, "GET", f"{FED}/{link.peer_code}/statement")
    if answer.status >= 400:
        raise PeerUnreachable(
            f"{link.peer_code} refused: {answer.body.get('detail')}",
            peer_code=answer.body.get("code"),
        )
    return answer.body


async def reconcile(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str
) -> dict[str, Any]:
    """Compares both sides' statements entry by entry, and reports each side's ledger against
    its own records (`ledgers`, from each statement). Agreed: the same chains, and neither
    ledger differs from its records."""
    require_reader(principal)
    link = await link_to(session, network_id, peer)
    ours = await statement(session, link)
    theirs = await fetch_peer_statement(fed, session, link)
    me, them = link.network_code, peer
    differences = (
        _compare(ours["out"], theirs["in"], f"{me}->{them}")
        + _compare(ours["in"], theirs["out"], f"{them}->{me}")
        + _resolutions(ours, me)
        + _resolutions(theirs, them)
    )
    own, peer_from_ours, remainder = _balances(ours)
    their_own, _, _ = _balances(theirs)
    # A statement without its ledger check (a peer of an older version) proves nothing of it.
    both = {me: ours["ledger"], them: theirs.get("ledger")}
    ledgers_agree = all(isinstance(v, dict) and v.get("agrees") is True for v in both.values())
    # The mirror: our balance, valued at each transfer's rate in the peer's units, plus the
    # peer's balance, is exactly the rounding remainder kept on the link.
    own_in_peer_units = sum(
        (Fraction(e["amount_sent"] * e["rate"]["num"], e["rate"]["den"]) for e in ours["out"]),
        Fraction(0),
    ) - sum(
        (Fraction(e["amount_received"] * e["rate"]["den"], e["rate"]["num"]) for e in ours["in"]),
        Fraction(0),
    )
    mirror_difference = own_in_peer_units + theirs["balance"]
    return {
        "network": me,
        "peer": them,
        "agreed": not differences
        and ledgers_agree
        and ours["balance"] == own
        and theirs["balance"] == peer_from_ours,
        "differences": differences,
        "balances": {
            me: {"ledger": ours["balance"], "from_statement": own},
            them: {"ledger": theirs["balance"], "from_statement": their_own},
        },
        "ledgers": both,
        "mirror": {
            "ours_in_peer_units": _frac(own_in_peer_units),
            "difference": _frac(mirror_difference),
            "tracked_remainder": _frac(remainder),
            "holds": mirror_difference == remainder,
        },
        "chains": {
            f"{me}->{them}": {"ours": len(ours["out"]), "theirs": len(theirs["in"])},
            f"{them}->{me}": {"ours": len(ours["in"]), "theirs": len(theirs["out"])},
        },
        "in_flight": {me: ours["in_flight"], them: theirs.get("in_flight")},
    }


def checkpoint_payload(a: str, b: str, stmt_a: dict[str, Any]) -> dict[str, Any]:
    """What both sides sign, computed from side a's statement (b computes the same from its
    own, swapping roles): each chain's length and last hash, and both balances."""
    own, peer, _ = _balances(stmt_a)
    ab = stmt_a["out"]
    ba = stmt_a["in"]
    first, second = sorted((a, b))
    chains = {
        f"{a}->{b}": {"seq": len(ab), "hash": ab[-1]["hash"] if ab else None},
        f"{b}->{a}": {"seq": len(ba), "hash": ba[-1]["hash"] if ba else None},
    }
    return {
        "protocol": crypto.PROTOCOL,
        "link": [first, second],
        "chains": dict(sorted(chains.items())),
        "balances": dict(sorted({a: own, b: peer}.items())),
    }


def _view(checkpoint: CheckpointRow) -> CheckpointView:
    return CheckpointView(
        id=checkpoint.id,
        payload=checkpoint.payload,
        signatures=checkpoint.signatures,
        created_at=checkpoint.created_at,
    )


async def propose_checkpoint(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str
) -> CheckpointView:
    """Signs this side's checkpoint of the link and asks the peer to countersign it; kept with
    both signatures when the peer's records give the same. Refused, before anything is signed,
    while this side's ledger differs from its records, and when the peer refuses because its
    own does (LinkLedgerMismatch, `side` naming the network)."""
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    await ledgers.require_agreement(session, link)
    me = link.network_code
    payload = checkpoint_payload(me, peer, await statement(session, link))
    sign = await signer(fed, session, network_id)
    signature = sign.sign(crypto.canonical(payload))
    keys = await repository.peer_keys(session, link.id)
    answer = await call_peer(
        fed,
        sign,
        link,
        keys,
        "POST",
        f"{FED}/{peer}/checkpoints",
        {"payload": payload, "key_id": sign.key_id, "signature": signature},
    )
    if answer.status == 409 and answer.body.get("code") == LinkLedgerMismatch.code:
        raise ledgers.peer_mismatch(peer, answer.body)
    if answer.status == 409:
        raise CheckpointMismatch(
            f"{peer} holds different records: reconcile first",
            ours=payload,
            theirs=answer.body.get("theirs"),
        )
    if answer.status >= 400:
        raise PeerUnreachable(f"{peer} refused: {answer.body.get('detail')}")
    peer_key = keys.get(answer.body.get("key_id", ""))
    if peer_key is None or not crypto.verify(
        peer_key, answer.body.get("signature", ""), crypto.canonical(payload)
    ):
        raise PeerUnreachable(f"{peer} did not sign the checkpoint with its key")
    signatures = {
        me: {"key_id": sign.key_id, "signature": signature},
        peer: {"key_id": answer.body["key_id"], "signature": answer.body["signature"]},
    }
    return _view(await repository.insert_checkpoint(session, link.id, payload, signatures))


async def countersign_checkpoint(
    fed: Federation, session: AsyncSession, ctx: PeerContext, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """The peer's side of propose_checkpoint: refuses (LinkLedgerMismatch, this side named)
    while its own ledger differs from its records; countersigns if its records give the same
    checkpoint; else answers 409 with its own version."""
    link = ctx.link
    peer = link.peer_code
    theirs = body.get("payload")
    keys = await repository.peer_keys(session, link.id)
    key = keys.get(str(body.get("key_id")))
    if (
        key is None
        or not isinstance(theirs, dict)
        or not crypto.verify(key, str(body.get("signature")), crypto.canonical(theirs))
    ):
        raise CheckpointMismatch("The checkpoint is not signed by your registered key")
    await ledgers.require_agreement(session, link)
    mine = checkpoint_payload(link.network_code, peer, await statement(session, link))
    if theirs != mine:
        return 409, {
            "code": "checkpoint_mismatch",
            "detail": "Our records differ at this point: reconcile first",
            "theirs": mine,
        }
    sign = await signer(fed, session, ctx.network_id)
    signature = sign.sign(crypto.canonical(mine))
    await repository.insert_checkpoint(
        session,
        link.id,
        mine,
        {
            link.network_code: {"key_id": sign.key_id, "signature": signature},
            peer: {"key_id": body["key_id"], "signature": body["signature"]},
        },
    )
    return 200, {"key_id": sign.key_id, "signature": signature}


async def list_checkpoints(
    session: AsyncSession, network_id: uuid.UUID, peer: str
) -> list[CheckpointView]:
    link = await link_to(session, network_id, peer)
    return [_view(c) for c in await repository.list_checkpoints(session, link.id)]
