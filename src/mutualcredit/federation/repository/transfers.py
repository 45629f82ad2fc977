"""SQL of transfers: the outbox and the inbox, each link's chains, and finishing a hold."""

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation.repository.rows import TransferRow
from mutualcredit.federation.schemas import TransferMessage

# One text of a transfer with its link's two network codes; several ways to find one.
_TRANSFER = """
    SELECT t.id, t.network_id, n.code AS network_code, t.link_id, l.peer_code, t.direction,
           t.status, t.trade_id, t.transfer_id, t.kind, t.payer_address, t.payee_address,
           t.amount_sent, t.amount_received, t.rate_num, t.rate_den, t.rate_version,
           t.expires_at, t.description, t.reference, t.via, t.request_hash, t.refusal_code,
           t.refusal_detail, t.seq, t.chain_hash, t.attempts, t.last_error, t.created_at,
           t.resolved_at, t.resolution, t.resolution_reason, t.resolved_by,
           t.receipt ->> 'status' AS peer_decision
    FROM transfers t
    JOIN links l ON l.id = t.link_id
    JOIN networks n ON n.id = t.network_id
"""


async def _transfers(
    session: AsyncSession, where: str, params: dict[str, Any]
) -> list[TransferRow]:
    rows = await session.execute(text(f"{_TRANSFER} {where}"), params)
    return [TransferRow.of(r) for r in rows.mappings()]


async def _transfer(
    session: AsyncSession, where: str, params: dict[str, Any]
) -> TransferRow | None:
    found = await _transfers(session, where, params)
    return found[0] if found else None


async def get_transfer(session: AsyncSession, row_id: int) -> TransferRow:
    transfer = await _transfer(session, "WHERE t.id = :i", {"i": row_id})
    assert transfer is not None, row_id
    return transfer


async def get_transfer_for_update(session: AsyncSession, row_id: int) -> TransferRow:
    transfer = await _transfer(session, "WHERE t.id = :i FOR UPDATE OF t", {"i": row_id})
    assert transfer is not None, row_id
    return transfer


async def find_transfer(
    session: AsyncSession, network_id: uuid.UUID, transfer_id: uuid.UUID, direction: str
) -> TransferRow | None:
    """A transfer of the network by its id and direction (unique)."""
    return await _transfer(
        session,
        "WHERE t.network_id = :n AND t.transfer_id = :t AND t.direction = :d",
        {"n": network_id, "t": transfer_id, "d": direction},
    )


async def get_forwarded_for_update(
    session: AsyncSession, network_id: uuid.UUID, transfer_id: uuid.UUID
) -> TransferRow | None:
    """At a hub: the inbound side of a transfer it forwarded and has not decided yet."""
    return await _transfer(
        session,
        "WHERE t.network_id = :n AND t.transfer_id = :t AND t.direction = 'in'"
        " AND t.status = 'forwarded' FOR UPDATE OF t",
        {"n": network_id, "t": transfer_id},
    )


async def transfer_of_trade(session: AsyncSession, trade_id: uuid.UUID) -> TransferRow | None:
    """The transfer a trade holds or booked: at a hub, which has both, the outbound one."""
    return await _transfer(
        session, "WHERE t.trade_id = :t ORDER BY t.direction DESC LIMIT 1", {"t": trade_id}
    )


async def list_transfers(
    session: AsyncSession, link_id: uuid.UUID, status: str | None, limit: int
) -> list[TransferRow]:
    return await _transfers(
        session,
        "WHERE t.link_id = :l AND (CAST(:s AS text) IS NULL OR t.status = :s)"
        " ORDER BY t.id DESC LIMIT :lim",
        {"l": link_id, "s": status, "lim": limit},
    )


async def accepted_chain(
    session: AsyncSession, link_id: uuid.UUID, direction: str
) -> list[TransferRow]:
    """A link's accepted transfers one way, in chain order."""
    return await _transfers(
        session,
        "WHERE t.link_id = :l AND t.direction = :d AND t.status = 'accepted' ORDER BY t.seq",
        {"l": link_id, "d": direction},
    )


async def resolved_by_operator(session: AsyncSession, link_id: uuid.UUID) -> list[TransferRow]:
    """Transfers sent over the link that an operator resolved and the peer has not confirmed:
    still waiting for its word, or disputed by it."""
    return await _transfers(
        session,
        "WHERE t.link_id = :l AND t.direction = 'out' AND t.status IN ('resolved', 'disputed')"
        " ORDER BY t.id",
        {"l": link_id},
    )


async def in_flight(session: AsyncSession, link_id: uuid.UUID) -> tuple[int, int]:
    """How many transfers over the link are undecided, and what they carry."""
    row = (
        await session.execute(
            text(
                "SELECT count(*) AS n, coalesce(sum(amount_sent), 0) AS amount FROM transfers"
                " WHERE link_id = :l AND status IN ('prepared', 'forwarded')"
            ),
            {"l": link_id},
        )
    ).one()
    return int(row.n), int(row.amount)


async def chain_balances(session: AsyncSession, link_id: uuid.UUID) -> tuple[int, int]:
    """The two link balances the link's chains of accepted transfers add up to: this side's
    (its units: sent out less received in) and the peer's (the peer's units: what the peer
    sent in less what it received out). A statement's `_balances`, without the remainder."""
    row = (
        await session.execute(
            text(
                "SELECT"
                " coalesce(sum(CASE direction WHEN 'out' THEN amount_sent"
                "  ELSE -amount_received END), 0) AS own,"
                " coalesce(sum(CASE direction WHEN 'in' THEN amount_sent"
                "  ELSE -amount_received END), 0) AS peer"
                " FROM transfers WHERE link_id = :l AND status = 'accepted'"
            ),
            {"l": link_id},
        )
    ).one()
    return int(row.own), int(row.peer)


async def chain_hash_at(
    session: AsyncSession, link_id: uuid.UUID, direction: str, seq: int
) -> bytes | None:
    found = await session.scalar(
        text("SELECT chain_hash FROM transfers WHERE link_id = :l AND direction = :d AND seq = :s"),
        {"l": link_id, "d": direction, "s": seq},
    )
    return None if found is None else bytes(found)


def _columns(msg: TransferMessage) -> dict[str, Any]:
    """A message in the columns it is stored in (protocol.message_of_columns reads them)."""
    return {
        "transfer_id": msg.transfer_id,
        "kind": msg.kind,
        "payer_address": msg.payer,
        "payee_address": msg.payee,
        "amount_sent": msg.amount_sent,
        "amount_received": msg.amount_received,
        "rate_num": msg.rate.num,
        "rate_den": msg.rate.den,
        "rate_version": msg.rate.version,
        "reference": msg.reference,
        "via": list(msg.via),
        "description": msg.description,
        "expires_at": msg.expires_at,
    }


_MESSAGE_COLUMNS = (
    "transfer_id, kind, payer_address, payee_address, amount_sent, amount_received, rate_num,"
    " rate_den, rate_version, reference, via, description, expires_at"
)
_MESSAGE_VALUES = (
    ":transfer_id, :kind, :payer_address, :payee_address, :amount_sent, :amount_received,"
    " :rate_num, :rate_den, :rate_version, :reference, :via, :description, :expires_at"
)


async def insert_outbound(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    link_id: uuid.UUID,
    trade_id: uuid.UUID | None,
    msg: TransferMessage,
    request_hash: bytes,
    first_attempt_in: float,
) -> int:
    """Queues a transfer in the outbox, first due in `first_attempt_in` seconds; its row id."""
    row_id = await session.scalar(
        text(
            f"INSERT INTO transfers (network_id, link_id, direction, status, trade_id,"
            f" request_hash, next_attempt_at, {_MESSAGE_COLUMNS})"
            f" VALUES (:n, :l, 'out', 'prepared', :trade_id, :hash,"
            f" clock_timestamp() + make_interval(secs => :later), {_MESSAGE_VALUES})"
            " RETURNING id"
        ),
        {
            **_columns(msg),
            "n": network_id,
            "l": link_id,
            "trade_id": trade_id,
            "hash": request_hash,
            "later": first_attempt_in,
        },
    )
    return int(row_id)


async def insert_inbound(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    link_id: uuid.UUID,
    msg: TransferMessage,
    request_hash: bytes,
    status: str,
    trade_id: uuid.UUID | None,
    refusal: tuple[str, dict[str, Any]] | None,
    seq: int | None,
    chain_hash: bytes | None,
) -> None:
    """Records what this network decided about a transfer it received (or, at a hub, that it
    forwarded it): final statuses are stamped with the time of the decision."""
    code, detail = refusal if refusal is not None else (None, None)
    await session.execute(
        text(
            f"INSERT INTO transfers (network_id, link_id, direction, status, trade_id,"
            f" request_hash, refusal_code, refusal_detail, seq, chain_hash, resolved_at,"
            f" {_MESSAGE_COLUMNS})"
            f" VALUES (:n, :l, 'in', :status, :trade_id, :hash, :code,"
            f" CAST(:detail AS jsonb), :seq, :chain_hash,"
            f" CASE WHEN :status IN ('accepted', 'refused') THEN clock_timestamp() END,"
            f" {_MESSAGE_VALUES})"
        ),
        {
            **_columns(msg),
            "n": network_id,
            "l": link_id,
            "status": status,
            "trade_id": trade_id,
            "hash": request_hash,
            "code": code,
            "detail": orjson.dumps(detail).decode() if detail is not None else None,
            "seq": seq,
            "chain_hash": chain_hash,
        },
    )


async def note_error(session: AsyncSession, row_id: int, error: str) -> None:
    """Why the last delivery of an outbound transfer still asked about did not end it."""
    await session.execute(
        text(
            "UPDATE transfers SET last_error = :e"
            " WHERE id = :i AND status IN ('prepared', 'resolved')"
        ),
        {"e": error[:500], "i": row_id},
    )


async def record_outcome(
    session: AsyncSession,
    row_id: int,
    *,
    status: str,
    seq: int | None,
    chain_hash: bytes | None,
    refusal: tuple[str, dict[str, Any]] | None,
    receipt: dict[str, Any] | None,
) -> None:
    """Makes a transfer final: accepted at `seq` in its chain, refused with `refusal`, or
    disputed (the peer's word contradicts an operator's resolution); `receipt` is the peer's,
    kept at the origin."""
    code, detail = refusal if refusal is not None else (None, None)
    await session.execute(
        text(
            "UPDATE transfers SET status = :s, seq = :seq, chain_hash = :h,"
            " refusal_code = :code, refusal_detail = CAST(:detail AS jsonb),"
            " receipt = CAST(:receipt AS jsonb), resolved_at = clock_timestamp(),"
            " next_attempt_at = NULL"
            " WHERE id = :i"
        ),
        {
            "s": status,
            "seq": seq,
            "h": chain_hash,
            "code": code,
            "detail": orjson.dumps(detail).decode() if detail is not None else None,
            "receipt": orjson.dumps(receipt).decode() if receipt is not None else None,
            "i": row_id,
        },
    )


async def mark_resolved(
    session: AsyncSession, row_id: int, *, resolution: str, reason: str, actor: str
) -> None:
    """An operator resolved a transfer in flight: its hold was posted or voided. It waits for
    the peer's word, asked at the longest backoff (claim_due)."""
    await session.execute(
        text(
            "UPDATE transfers SET status = 'resolved', resolution = :r,"
            " resolution_reason = :why, resolved_by = :who, resolved_at = clock_timestamp()"
            " WHERE id = :i AND status = 'prepared'"
        ),
        {"r": resolution, "why": reason, "who": actor, "i": row_id},
    )


async def claim_due(session: AsyncSession, *, limit: int, backoff_cap: float) -> list[int]:
    """Claims outbound transfers due for (re)delivery, and sets when each is due next: backoff
    doubling from a quarter second, capped; a transfer an operator resolved is asked about at
    the cap. SKIP LOCKED: workers share the outbox."""
    rows = await session.execute(
        text(
            """
            UPDATE transfers t
            SET attempts = t.attempts + 1,
                next_attempt_at = clock_timestamp() + make_interval(secs => CASE
                    WHEN t.status = 'resolved' THEN :cap
                    ELSE least(:cap, 0.25 * power(2, least(t.attempts, 20))) END)
            FROM (SELECT id FROM transfers
                  WHERE direction = 'out' AND status IN ('prepared', 'resolved')
                    AND next_attempt_at <= clock_timestamp()
                  ORDER BY next_attempt_at LIMIT :limit
                  FOR UPDATE SKIP LOCKED) AS due
            WHERE t.id = due.id
            RETURNING t.id
            """
        ),
        {"cap": backoff_cap, "limit": limit},
    )
    return [int(i) for i in rows.scalars()]


async def inbound_of(session: AsyncSession, out_row_id: int) -> TransferRow | None:
    """At a hub: the inbound side of the transfer that an outbound row sends on."""
    return await _transfer(
        session,
        "WHERE (t.network_id, t.transfer_id) ="
        " (SELECT o.network_id, o.transfer_id FROM transfers o WHERE o.id = :o)"
        " AND t.direction = 'in'",
        {"o": out_row_id},
    )


async def lock_transfer_id(
    session: AsyncSession, network_id: uuid.UUID, transfer_id: uuid.UUID
) -> None:
    """Serialises everything done with one transfer id in one network (to the commit)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"{network_id}/transfer/{transfer_id}"},
    )


async def finish_hold(
    session: AsyncSession, trade_id: uuid.UUID, *, post: bool, actor: str
) -> None:
    """Posts or voids a cross-network hold, as its transfer's receipt says (mc_finish_hold:
    the only writer the federated-hold trigger lets through)."""
    await session.execute(
        text("SELECT mc_finish_hold(:t, :post, :actor)"),
        {"t": trade_id, "post": post, "actor": actor},
    )
