"""Sending a transfer: the outbox, delivering from it, and applying the receipt.

A transfer 'out' is queued in the transaction that holds its amount (trades.py at the origin,
inbound.py at a hub, settlements.py), so it exists exactly when its hold does. It is delivered
once at once, and then by the outbox loop of every worker (claimed with SKIP LOCKED, with capped
backoff) until a final receipt, accepted or refused, is applied: the hold is posted or voided,
and the transfer is final. A signed 4xx problem of the peer is its definite refusal and ends
delivery at once the same way; only no answer, an unsigned one, a 5xx or a transient 4xx is
retried. A transfer an operator resolved (resolve.py) is still asked about, at the longest
backoff, until the peer's word confirms or disputes the resolution. models.Transfer draws the
states.
"""

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation import chains, crypto, protocol, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import PeerUnreachable
from mutualcredit.federation.keys import signer
from mutualcredit.federation.peers import call_peer
from mutualcredit.federation.protocol import FED
from mutualcredit.federation.repository import LinkRow, TransferRow
from mutualcredit.federation.schemas import TransferMessage, TransferRate

log = logging.getLogger("mutualcredit.federation")


async def queue(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    transfer_id: uuid.UUID,
    link: LinkRow,
    trade_id: uuid.UUID | None,
    kind: str,
    payer: str,
    payee: str,
    amount_sent: int,
    expires_at: datetime,
    description: str,
    reference: str | None,
    first_attempt_in: float,
    amount_received: int | None = None,
    via: tuple[str, ...] = (),
) -> int:
    """Puts a transfer over `link` in the outbox, at the link's rate: the message it will be
    sent as, every time. Returns its row id. What arrives is the amount sent converted at the
    rate, except for a settlement in full, which states the peer's whole link balance
    (settlements.py); `trade_id` is None only for one that sends nothing, and holds nothing.
    `via`: at a hub, the hubs it went through, this one last."""
    msg = TransferMessage.model_construct(
        transfer_id=transfer_id,
        kind=kind,
        payer=payer,
        payee=payee,
        amount_sent=amount_sent,
        amount_received=(
            protocol.convert(amount_sent, link.rate_num, link.rate_den)
            if amount_received is None
            else amount_received
        ),
        rate=TransferRate.model_construct(
            num=link.rate_num, den=link.rate_den, version=link.rate_version
        ),
        expires_at=expires_at,
        description=description,
        reference=reference,
        via=list(via),
    )
    return await repository.insert_outbound(
        session,
        network_id=network_id,
        link_id=link.id,
        trade_id=trade_id,
        msg=msg,
        request_hash=protocol.message_hash(msg),
        first_attempt_in=first_attempt_in,
    )


async def deliver(fed: Federation, row_id: int, *, seconds: float | None = None) -> str:
    """Sends one outbound transfer (again) and applies a final receipt, or the peer's definite
    refusal. Returns its status."""
    async with fed.sessionmaker.begin() as session:
        transfer = await repository.get_transfer(session, row_id)
        if transfer.status not in ASKING:
            return transfer.status
        link = await repository.get_link_by_id(session, transfer.link_id)
        sign = await signer(fed, session, transfer.network_id)
        keys = await repository.peer_keys(session, link.id)
    path = f"{FED}/{link.peer_code}/transfers"
    try:
        answer = await call_peer(
            fed, sign, link, keys, "POST", path, protocol.message(transfer.message), seconds=seconds
        )
    except PeerUnreachable as exc:
        await _note_error(fed, row_id, exc.detail)
        return transfer.status
    receipt = answer.body
    if definite_refusal(answer.status, receipt):
        return await apply_receipt(
            fed, row_id, refusal_receipt(transfer, link.peer_code, answer.status, receipt)
        )
    if answer.status >= 400 or receipt.get("transfer_id") != str(transfer.message.transfer_id):
        await _note_error(fed, row_id, f"{answer.status} {receipt.get('code')}")
        return transfer.status
    if receipt.get("status") not in ("accepted", "refused"):
        return transfer.status
    return await apply_receipt(fed, row_id, receipt)


# What the outbox still sends: a transfer in flight, and one an operator resolved (to learn the
# peer's word on it).
ASKING = ("prepared", "resolved")

# Statuses of a signed problem that say "not now" rather than "no": the peer is busy or timed
# the request out, and the same delivery may succeed later.
_TRANSIENT = frozenset({408, 425, 429})


def definite_refusal(status: int, body: dict[str, Any]) -> bool:
    """A signed 4xx problem with a code: the peer's own final word that it did not book this
    message (transfer_conflict, peer_forbidden, validation_error...). Retrying sends the same
    bytes and gets the same answer, so delivery ends at once. Not a definite answer: no answer,
    an unsigned one, a 5xx, a transient 4xx (peers.call_peer raises for the first two)."""
    return 400 <= status < 500 and status not in _TRANSIENT and isinstance(body.get("code"), str)


def refusal_receipt(
    transfer: TransferRow, peer: str, status: int, problem: dict[str, Any]
) -> dict[str, Any]:
    """A signed problem of the peer as a refused receipt: its code, and its words as detail."""
    return {
        "transfer_id": str(transfer.message.transfer_id),
        "network": peer,
        "status": "refused",
        "code": problem["code"],
        "detail": {"status": status, "detail": problem.get("detail")},
        "problem": problem,
    }


async def _note_error(fed: Federation, row_id: int, error: str) -> None:
    log.warning("transfer delivery failed: %s", error)
    async with fed.sessionmaker.begin() as session:
        await repository.note_error(session, row_id, error)


async def apply_receipt(fed: Federation, row_id: int, receipt: dict[str, Any]) -> str:
    """Applies a final receipt to a transfer still asked about, in one transaction. In flight:
    accepted posts its hold, refused voids it; the transfer becomes final, and so does a
    settlement it executes and, at a hub, the transfer it forwarded. Resolved by an operator:
    the hold was finished already, so the receipt only confirms the resolution (accepted or
    refused) or contradicts it (disputed, the receipt kept): no value moves either way.
    Returns the transfer's status."""
    async with fed.sessionmaker.begin() as session:
        transfer = await repository.get_transfer_for_update(session, row_id)
        if transfer.status not in ASKING:
            return transfer.status
        accepted = receipt["status"] == "accepted"
        seq = chain_hash = None
        if accepted:
            seq = int(receipt["seq"])
            chain_hash = crypto.b64d(receipt["chain_hash"])
            prev = crypto.b64d(receipt["prev_hash"])
            if (
                receipt["amount_received"] != transfer.message.amount_received
                or protocol.chain_next(prev, transfer.message, seq) != chain_hash
            ):
                # The peer recorded something else than we sent: never post on that. Keep the
                # hold and keep asking; reconciliation shows the difference to the operators.
                await repository.note_error(session, row_id, "receipt does not match the transfer")
                log.error(
                    "receipt of transfer %s does not match what was sent",
                    transfer.message.transfer_id,
                )
                return transfer.status
        if transfer.status == "resolved":
            return await _confirm_resolution(session, transfer, receipt, seq, chain_hash)
        if transfer.trade_id is not None:  # None: a settlement in full that sends nothing
            await repository.finish_hold(
                session,
                transfer.trade_id,
                post=accepted,
                actor=f"system:federation:{transfer.peer_code}",
            )
        status = "accepted" if accepted else "refused"
        await _record_outcome(session, row_id, status, receipt, seq, chain_hash, keep_receipt=True)
        if transfer.message.kind == "settlement":
            await repository.set_status_of_transfer(
                session, transfer.message.transfer_id, "executed" if accepted else "refused"
            )
        await finish_forwarded(session, transfer, accepted, receipt)
        return status


async def _confirm_resolution(
    session: AsyncSession,
    transfer: TransferRow,
    receipt: dict[str, Any],
    seq: int | None,
    chain_hash: bytes | None,
) -> str:
    """The peer's word on a transfer an operator resolved: the same as the resolution makes it
    final as the peer decided it (an accepted one takes its place in the chain); the opposite
    makes it disputed, kept with the peer's receipt for the operators to settle. The hold is
    not touched again: nothing is created or destroyed automatically."""
    accepted = receipt["status"] == "accepted"
    agrees = accepted == (transfer.resolution == "post")
    status = ("accepted" if accepted else "refused") if agrees else "disputed"
    if not agrees:
        log.error(
            "transfer %s: %s %s it, but an operator resolved it with %s",
            transfer.message.transfer_id,
            receipt.get("network"),
            receipt["status"],
            transfer.resolution,
        )
    await _record_outcome(
        session,
        transfer.id,
        status,
        receipt,
        seq if status == "accepted" else None,
        chain_hash if status == "accepted" else None,
        keep_receipt=True,
    )
    return status


async def finish_forwarded(
    session: AsyncSession, out: TransferRow, accepted: bool, receipt: dict[str, Any]
) -> None:
    """At a hub: the next hop decided (or the hub's operator resolved the transfer sent on), so
    the inbound transfer is decided the same way."""
    inbound = await repository.get_forwarded_for_update(
        session, out.network_id, out.message.transfer_id
    )
    if inbound is None:
        return
    seq = chain_hash = None
    if accepted:
        seq, chain_hash = await chains.append(
            session, inbound.link_id, inbound.message, inbound.peer_code, inbound.network_code
        )
    status = "accepted" if accepted else "refused"
    await _record_outcome(session, inbound.id, status, receipt, seq, chain_hash, keep_receipt=False)


async def _record_outcome(
    session: AsyncSession,
    row_id: int,
    status: str,
    receipt: dict[str, Any],
    seq: int | None,
    chain_hash: bytes | None,
    *,
    keep_receipt: bool,
) -> None:
    """Makes a transfer final as the receipt says: accepted in the chain at seq, refused with
    the refusing network's code, or disputed. `refused_by` names the network that refused: the
    one a signed receipt names in its detail (a hub passes on the refusal of the network behind
    it), else the one that signed it."""
    refusal = None
    if receipt["status"] == "refused":
        detail = dict(receipt.get("detail") or {})
        detail["refused_by"] = detail.get("refused_by") or receipt.get("network")
        refusal = (receipt.get("code") or "refused", detail)
    await repository.record_outcome(
        session,
        row_id,
        status=status,
        seq=seq,
        chain_hash=chain_hash,
        refusal=refusal,
        receipt=receipt if keep_receipt else None,
    )


async def hub_receipt(
    session: AsyncSession, out_row_id: int
) -> tuple[uuid.UUID, dict[str, Any]] | None:
    """At a hub, after the next hop decided: the network and the receipt of the inbound side of
    the transfer, the answer to the network that sent it here."""
    inbound = await repository.inbound_of(session, out_row_id)
    if inbound is None:
        return None
    return inbound.network_id, await chains.receipt(session, inbound)


# ---------------------------------------------------------------------------------------------
# The outbox loop
# ---------------------------------------------------------------------------------------------


async def deliver_due(fed: Federation, limit: int = 50) -> int:
    """Claims the transfers due for (re)delivery, with backoff, and sends them concurrently."""
    async with fed.sessionmaker.begin() as session:
        ids = await repository.claim_due(
            session, limit=limit, backoff_cap=fed.settings.federation_retry_max_seconds
        )
    if ids:
        await asyncio.gather(*(deliver(fed, i) for i in ids), return_exceptions=True)
    return len(ids)


async def prune_nonces(fed: Federation) -> None:
    """Forgets nonces older than twice the allowed clock skew: a request signed that long ago
    is refused as stale anyway."""
    async with fed.sessionmaker.begin() as session:
        await repository.prune_nonces(session, 2 * fed.settings.federation_clock_skew_seconds)
