"""Sending a transfer: the outbox, delivering from it, and applying the receipt.

A transfer 'out' is queued in the transaction that holds its amount (trades.py at the origin,
inbound.py at a hub, settlements.py), so it exists exactly when its hold does. It is delivered
once at once, and then by the outbox loop of every worker (claimed with SKIP LOCKED, with capped
backoff) until a final receipt, accepted or refused, is applied: the hold is posted or voided,
and the transfer is final. models.Transfer draws the states.
"""

import asyncio
import logging
import time
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
    """Sends one outbound transfer (again) and applies a final receipt. Returns its status."""
    async with fed.sessionmaker.begin() as session:
        transfer = await repository.get_transfer(session, row_id)
        if transfer.status != "prepared":
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
        return "prepared"
    receipt = answer.body
    if answer.status >= 400 or receipt.get("transfer_id") != str(transfer.message.transfer_id):
        await _note_error(fed, row_id, f"{answer.status} {receipt.get('code')}")
        return "prepared"
    if receipt.get("status") not in ("accepted", "refused"):
        return "prepared"
    return await apply_receipt(fed, row_id, receipt, link.peer_code)


async def _note_error(fed: Federation, row_id: int, error: str) -> None:
    log.warning("transfer delivery failed: %s", error)
    async with fed.sessionmaker.begin() as session:
        await repository.note_error(session, row_id, error)


async def apply_receipt(fed: Federation, row_id: int, receipt: dict[str, Any], peer: str) -> str:
    """Applies a final receipt to a transfer still in flight, in one transaction: accepted
    posts its hold, refused voids it; the transfer becomes final, and so does a settlement it
    executes and, at a hub, the transfer it forwarded. Returns the transfer's status."""
    async with fed.sessionmaker.begin() as session:
        transfer = await repository.get_transfer_for_update(session, row_id)
        if transfer.status != "prepared":
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
                return "prepared"
        if transfer.trade_id is not None:  # None: a settlement in full that sends nothing
            await repository.finish_hold(
                session, transfer.trade_id, post=accepted, actor=f"system:federation:{peer}"
            )
        await _record_outcome(session, row_id, receipt, seq, chain_hash, keep_receipt=True)
        if transfer.message.kind == "settlement":
            await repository.set_status_of_transfer(
                session, transfer.message.transfer_id, "executed" if accepted else "refused"
            )
        await _finish_forwarded(session, transfer, accepted, receipt)
        return "accepted" if accepted else "refused"


async def _finish_forwarded(
    session: AsyncSession, out: TransferRow, accepted: bool, receipt: dict[str, Any]
) -> None:
    """At a hub: the next hop decided, so the inbound transfer is decided the same way."""
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
    await _record_outcome(session, inbound.id, receipt, seq, chain_hash, keep_receipt=False)


async def _record_outcome(
    session: AsyncSession,
    row_id: int,
    receipt: dict[str, Any],
    seq: int | None,
    chain_hash: bytes | None,
    *,
    keep_receipt: bool,
) -> None:
    """Makes a transfer final as the receipt says: accepted in the chain at seq, or refused
    with the refusing network's code (named in the detail as refused_by: the network that
    answered, unless it passes on, as a hub does, the refusal of a network further on)."""
    accepted = receipt["status"] == "accepted"
    refusal = None
    if not accepted:
        detail = {"refused_by": receipt.get("network"), **(receipt.get("detail") or {})}
        refusal = (receipt.get("code") or "refused", detail)
    await repository.record_outcome(
        session,
        row_id,
        accepted=accepted,
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


async def run_forever(fed: Federation) -> None:
    """The outbox loop every worker runs: delivers whatever is due, while anything is."""
    last_prune = 0.0
    while True:
        try:
            while await deliver_due(fed) > 0:
                pass
            if time.monotonic() - last_prune > 60:
                await prune_nonces(fed)
                last_prune = time.monotonic()
        except Exception:
            log.exception("federation delivery failed; trying again at the next interval")
        await asyncio.sleep(fed.settings.federation_interval_seconds)
