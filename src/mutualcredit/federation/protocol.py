"""The federation protocol's messages: what a transfer says, its hash, and each link's chain.

Pure functions of the message, so that both ends compute the same bytes. A trade from
`alpha/ann` to `bravo/bob`:

1. alpha, in one transaction: a hold from ann to `link.bravo` (kind 'federation') and a transfer
   row 'out' (the outbox). Committed before anything is sent: a crash after this point is
   recovered from the row, and before it nothing happened (trades.py).
2. alpha sends the transfer (signed). bravo, in one transaction, decides and records: before the
   expiry, it books `link.alpha` -> bob within its own limits and appends the transfer to the
   link's chain (seq, running hash), or it records a refusal; after the expiry it records a
   refusal. The answer is a signed receipt. A duplicate delivery returns the recorded receipt
   (inbound.py, chains.py).
3. alpha applies the receipt, in one transaction: accepted posts the hold, refused voids it.
   Until it has a receipt it keeps the hold and sends again (the same message: delivery is the
   status query), with backoff, from the outbox, in every worker, after any restart
   (outbound.py).

A hub (a network with links to both) receives a transfer for a third network like any other,
holds `link.alpha` -> `link.charlie` with an expiry shorter by the hop margin, and sends it on;
it answers 'pending' until the next hop's receipt is final, then posts or voids its hold and
answers with its own final receipt. The outcome is always decided by the last network, before
its expiry, which is the shortest on the route: so no network ever has to guess.

A route may cross several hubs (a tree of networks). A transfer a hub sends on names the hubs it
went through, `via`, in the signed message: with the payer's network, that is its path, and a
network refuses (`route_loop`) a transfer whose path holds itself already, or whose next hop is
on it, so a route never visits a network twice; and no transfer crosses more than
schemas.MAX_HOPS links, or fewer as a deployment sets (`too_many_hops`). A transfer from its
origin has no `via`, and its wire form leaves the member out: that form, and its hash, are the
ones of the protocol before routes.

models.Transfer draws the states a transfer moves through at each end.
"""

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mutualcredit.federation import crypto
from mutualcredit.federation.schemas import TransferMessage, TransferRate

# Where a network's node-to-node endpoints are, under a deployment's URL.
FED = "/federation/v1/networks"


def convert(amount: int, num: int, den: int) -> int:
    """Exact conversion, rounded down (toward zero: amounts are positive). What is rounded away
    stays with the sending side; reconciliation reports it as the link's tracked remainder."""
    return amount * num // den


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message_of_columns(columns: Mapping[Any, Any]) -> TransferMessage:
    """A transfer's message from the columns it is stored in (a row of `transfers`): as it was
    validated when it arrived, or as this network stated it; not validated again."""
    return TransferMessage.model_construct(
        transfer_id=columns["transfer_id"],
        kind=columns["kind"],
        payer=columns["payer_address"],
        payee=columns["payee_address"],
        amount_sent=columns["amount_sent"],
        amount_received=columns["amount_received"],
        rate=TransferRate.model_construct(
            num=columns["rate_num"], den=columns["rate_den"], version=columns["rate_version"]
        ),
        expires_at=columns["expires_at"],
        description=columns["description"],
        reference=columns["reference"],
        via=list(columns["via"]),
    )


def message(transfer: TransferMessage | Mapping[Any, Any]) -> dict[str, Any]:
    """The transfer as sent: identical bytes on every delivery of it, and what the receiver
    hashes. Of a message, or of the row a transfer is stored in (as a driver returns it)."""
    msg = transfer if isinstance(transfer, TransferMessage) else message_of_columns(transfer)
    sent: dict[str, Any] = {
        "transfer_id": str(msg.transfer_id),
        "kind": msg.kind,
        "payer": msg.payer,
        "payee": msg.payee,
        "amount_sent": msg.amount_sent,
        "amount_received": msg.amount_received,
        "rate": {"num": msg.rate.num, "den": msg.rate.den, "version": msg.rate.version},
        "expires_at": iso(msg.expires_at),
        "description": msg.description,
        "reference": msg.reference,
    }
    # Only when the transfer came through a hub: a direct transfer is the same bytes, and hash,
    # as before routes, so a network that does not know `via` still reads it.
    if msg.via:
        sent["via"] = list(msg.via)
    return sent


def path(msg: TransferMessage, sender: str) -> list[str]:
    """The networks the transfer visited before the one receiving it: the payer's, the hubs it
    names, then `sender` (already last, unless a hub that does not name itself sent it)."""
    visited = [msg.payer.split("/", 1)[0], *msg.via]
    return visited if visited[-1] == sender else [*visited, sender]


def message_hash(msg: TransferMessage) -> bytes:
    """What a redelivery is compared by: the same message has the same hash, at both ends."""
    return hashlib.sha256(crypto.canonical(message(msg))).digest()


def genesis(sender: str, receiver: str) -> bytes:
    """The hash a link's chain from `sender` to `receiver` starts from."""
    return hashlib.sha256(f"mutualcredit link chain {sender}->{receiver}".encode()).digest()


def chain_entry(msg: TransferMessage, seq: int) -> bytes:
    return crypto.canonical(
        [
            str(msg.transfer_id),
            seq,
            msg.kind,
            msg.payer,
            msg.payee,
            msg.amount_sent,
            msg.amount_received,
            msg.rate.num,
            msg.rate.den,
            msg.rate.version,
            msg.reference,
        ]
    )


def chain_next(prev: bytes, msg: TransferMessage, seq: int) -> bytes:
    """The hash of the chain once `msg` takes place `seq` after `prev`."""
    return hashlib.sha256(prev + chain_entry(msg, seq)).digest()
