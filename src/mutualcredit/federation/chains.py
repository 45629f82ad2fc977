"""Each link's chain of accepted inbound transfers, and the receipt that quotes it.

The receiving side gives every transfer it accepts the next place (seq) in its link's inbound
chain, with a running hash over the transfers' messages (protocol.chain_next); the sender checks
the hash before it posts, and reconciliation compares both sides' chains place by place.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation import crypto, protocol, repository
from mutualcredit.federation.repository import TransferRow
from mutualcredit.federation.schemas import TransferMessage


async def append(
    session: AsyncSession, link_id: uuid.UUID, msg: TransferMessage, sender: str, receiver: str
) -> tuple[int, bytes]:
    """Gives an accepted inbound transfer the next place in its link's chain (the link row is
    locked: one append at a time per link). Returns its seq and the chain's new hash.

    FOR NO KEY UPDATE, not FOR UPDATE: every signed request already holds a KEY SHARE lock on
    the link's row (its nonce row references the link), and FOR UPDATE would wait for all of
    them while they wait for the accounts this transaction holds: a deadlock under load."""
    head = await repository.lock_chain_head(session, link_id)
    seq = head.seq + 1
    prev = head.hash if head.hash else protocol.genesis(sender, receiver)
    chain_hash = protocol.chain_next(prev, msg, seq)
    await repository.set_chain_head(session, link_id, seq, chain_hash)
    return seq, chain_hash


async def previous_hash(
    session: AsyncSession, transfer: TransferRow, sender: str, receiver: str
) -> bytes:
    """The chain's hash before the transfer's place in it."""
    if transfer.seq is None or transfer.seq == 1:
        return protocol.genesis(sender, receiver)
    prev = await repository.chain_hash_at(
        session, transfer.link_id, transfer.direction, transfer.seq - 1
    )
    return prev if prev is not None else protocol.genesis(sender, receiver)


async def receipt(session: AsyncSession, transfer: TransferRow) -> dict[str, Any]:
    """What the receiving side answers about an inbound transfer: its decision, and for an
    accepted one its place in the chain and the hash before it (so the sender can check the
    chain's hash), signed by the answer's signature. A hub's forwarded transfer is pending."""
    prev = (
        await previous_hash(session, transfer, transfer.peer_code, transfer.network_code)
        if transfer.status == "accepted"
        else None
    )
    return {
        "transfer_id": str(transfer.message.transfer_id),
        "network": transfer.network_code,
        "status": {"forwarded": "pending"}.get(transfer.status, transfer.status),
        "amount_received": transfer.message.amount_received,
        "seq": transfer.seq,
        "prev_hash": crypto.b64e(prev) if prev is not None else None,
        "chain_hash": crypto.b64e(transfer.chain_hash) if transfer.chain_hash else None,
        "code": transfer.refusal_code,
        "detail": transfer.refusal_detail,
        "decided_at": protocol.iso(transfer.resolved_at) if transfer.resolved_at else None,
    }
