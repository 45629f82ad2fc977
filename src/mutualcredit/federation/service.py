"""Federation for operators and members: identity, links, cross-network trades, statements,
reconciliation, checkpoints and settlements. The wire protocol itself is in protocol.py."""

import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.audit.context import explain
from mutualcredit.auth.models import Role
from mutualcredit.auth.permissions import require_operator, require_reader, require_writer
from mutualcredit.auth.service import Principal
from mutualcredit.errors import Forbidden, ProblemError, ValidationProblem
from mutualcredit.federation import crypto, protocol
from mutualcredit.federation.errors import (
    AmountTooSmall,
    CheckpointMismatch,
    InvalidAddress,
    LinkExists,
    LinkNotActive,
    LinkNotFound,
    LinkRateMismatch,
    NoRoute,
    PeerUnreachable,
    SettlementExists,
    SettlementInvalid,
    TransferRefused,
)
from mutualcredit.federation.protocol import FED, Federation, PeerContext
from mutualcredit.federation.schemas import (
    CheckpointView,
    LinkCreate,
    LinkUpdate,
    LinkView,
    PeerKeyCreate,
    SettlementCreate,
    SettlementView,
    TransferView,
)
from mutualcredit.hashing import request_hash
from mutualcredit.networks.errors import NetworkNotFound
from mutualcredit.trades import repository
from mutualcredit.trades.schemas import TradeCreate

LINK_PREFIX = "link."
SETTLEMENT_PREFIX = "settlement."


# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------


async def descriptor(fed: Federation, session: AsyncSession, code: str) -> dict[str, Any]:
    """The public document peers fetch: address, unit, endpoints, keys."""
    network = (
        (await session.execute(text("SELECT * FROM networks WHERE code = :c"), {"c": code}))
        .mappings()
        .one_or_none()
    )
    if network is None:
        raise NetworkNotFound(f"No network {code!r}")
    await protocol.ensure_key(fed, session, network["id"])
    keys = await session.execute(
        text(
            "SELECT key_id, public_key, status, created_at, retired_at FROM node_keys"
            " WHERE network_id = :n ORDER BY created_at"
        ),
        {"n": network["id"]},
    )
    base = fed.public_url.rstrip("/")
    return {
        "protocol": crypto.PROTOCOL,
        "address": code,
        "name": network["name"],
        "unit": {
            "name": network["unit_name"],
            "symbol": network["unit_symbol"],
            "scale": network["scale"],
        },
        "url": base,
        "endpoints": {
            "descriptor": f"{base}{FED}/{code}/descriptor",
            "link": f"{base}{FED}/{code}/link",
            "transfers": f"{base}{FED}/{code}/transfers",
            "statement": f"{base}{FED}/{code}/statement",
            "checkpoints": f"{base}{FED}/{code}/checkpoints",
            "keys": f"{base}{FED}/{code}/keys",
        },
        "keys": [
            {
                "key_id": k.key_id,
                "public_key": crypto.b64e(k.public_key),
                "status": k.status,
                "created_at": k.created_at,
                "retired_at": k.retired_at,
            }
            for k in keys
        ],
    }


# ---------------------------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------------------------

_LINK_VIEW = text(
    """
    SELECT l.*, a.code AS account, a.balance, a.pending_debits, a.pending_credits,
           a.credit_limit, a.balance_max, s.code AS settlement_account,
           (SELECT coalesce(json_agg(json_build_object('key_id', k.key_id, 'status', k.status)
                                     ORDER BY k.created_at), '[]')
            FROM link_peer_keys k WHERE k.link_id = l.id) AS peer_keys
    FROM links l
    JOIN accounts a ON a.id = l.account_id
    JOIN accounts s ON s.id = l.settlement_account_id
    WHERE l.network_id = :n AND (CAST(:peer AS text) IS NULL OR l.peer_code = :peer)
    ORDER BY l.peer_code
    """
)


def _view(row: RowMapping) -> LinkView:
    return LinkView(
        peer=row["peer_code"],
        peer_url=row["peer_url"],
        status=row["status"],
        status_reason=row["status_reason"],
        account=row["account"],
        settlement_account=row["settlement_account"],
        rate={"num": row["rate_num"], "den": row["rate_den"], "version": row["rate_version"]},
        credit_limit=row["credit_limit"],
        balance_max=row["balance_max"],
        balance=row["balance"],
        pending_debits=row["pending_debits"],
        pending_credits=row["pending_credits"],
        default_route=row["default_route"],
        peer_keys=row["peer_keys"],
        agreed_at=row["agreed_at"],
        created_at=row["created_at"],
    )


async def list_links(session: AsyncSession, network_id: uuid.UUID) -> list[LinkView]:
    rows = (await session.execute(_LINK_VIEW, {"n": network_id, "peer": None})).mappings()
    return [_view(r) for r in rows]


async def link_row(session: AsyncSession, network_id: uuid.UUID, peer: str) -> RowMapping:
    row = (
        (
            await session.execute(
                text(
                    "SELECT l.*, n.code AS network_code FROM links l"
                    " JOIN networks n ON n.id = l.network_id"
                    " WHERE l.network_id = :n AND l.peer_code = :p"
                ),
                {"n": network_id, "p": peer},
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise LinkNotFound(f"No link to {peer!r}", peer=peer)
    return row


async def get_link(session: AsyncSession, network_id: uuid.UUID, peer: str) -> LinkView:
    row = (await session.execute(_LINK_VIEW, {"n": network_id, "peer": peer})).mappings().first()
    if row is None:
        raise LinkNotFound(f"No link to {peer!r}", peer=peer)
    return _view(row)


async def create_link(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    data: LinkCreate,
) -> LinkView:
    require_operator(principal)
    code = await session.scalar(text("SELECT code FROM networks WHERE id = :n"), {"n": network_id})
    if data.peer == code:
        raise ValidationProblem("peer: a network cannot link to itself")
    await protocol.ensure_key(fed, session, network_id)
    await explain(session, data.reason or f"link to {data.peer}")
    try:
        async with session.begin_nested():
            account_id = await session.scalar(
                text(
                    "INSERT INTO accounts (network_id, code, name, kind, credit_limit, balance_max)"
                    " VALUES (:n, :c, :name, 'link', :cl, :bm) RETURNING id"
                ),
                {
                    "n": network_id,
                    "c": LINK_PREFIX + data.peer,
                    "name": f"Network {data.peer}",
                    "cl": data.credit_limit,
                    "bm": data.balance_max,
                },
            )
            settlement_id = await session.scalar(
                text(
                    "INSERT INTO accounts (network_id, code, name, kind, credit_limit, balance_max)"
                    " VALUES (:n, :c, :name, 'system', :cl, NULL) RETURNING id"
                ),
                {
                    "n": network_id,
                    "c": SETTLEMENT_PREFIX + data.peer,
                    "name": f"Settlements with {data.peer}",
                    "cl": MAX_AMOUNT,
                },
            )
            link_id = await session.scalar(
                text(
                    "INSERT INTO links (network_id, peer_code, peer_url, account_id,"
                    " settlement_account_id, rate_num, rate_den, default_route)"
                    " VALUES (:n, :p, :u, :a, :s, :num, :den, :dr) RETURNING id"
                ),
                {
                    "n": network_id,
                    "p": data.peer,
                    "u": str(data.peer_url).rstrip("/"),
                    "a": account_id,
                    "s": settlement_id,
                    "num": data.rate.num,
                    "den": data.rate.den,
                    "dr": data.default_route,
                },
            )
            await _add_key(session, link_id, data.peer_key)
    except IntegrityError as exc:
        raise LinkExists(
            f"A link to {data.peer!r} exists, or account {LINK_PREFIX}{data.peer} or "
            f"{SETTLEMENT_PREFIX}{data.peer} is taken",
            peer=data.peer,
        ) from exc
    return await get_link(session, network_id, data.peer)


async def _add_key(session: AsyncSession, link_id: uuid.UUID, key: PeerKeyCreate) -> None:
    await session.execute(
        text(
            "INSERT INTO link_peer_keys (link_id, key_id, public_key) VALUES (:l, :k, :p)"
            " ON CONFLICT (link_id, key_id) DO UPDATE SET status = 'active'"
            " WHERE link_peer_keys.public_key = excluded.public_key"
        ),
        {"l": link_id, "k": key.key_id, "p": crypto.b64d(key.public_key)},
    )


async def add_peer_key(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    key: PeerKeyCreate,
) -> LinkView:
    require_operator(principal)
    link = await link_row(session, network_id, peer)
    await _add_key(session, link["id"], key)
    return await get_link(session, network_id, peer)


async def revoke_peer_key(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str, key_id: str
) -> LinkView:
    require_operator(principal)
    link = await link_row(session, network_id, peer)
    await session.execute(
        text("UPDATE link_peer_keys SET status = 'revoked' WHERE link_id = :l AND key_id = :k"),
        {"l": link["id"], "k": key_id},
    )
    return await get_link(session, network_id, peer)


async def agree_link(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str
) -> LinkView:
    """Confirms the link with the peer (signed both ways). Both sides must hold the same rate,
    inverted; then both mark the link active (a suspended side stays suspended)."""
    require_operator(principal)
    link = await link_row(session, network_id, peer)
    sign = await protocol.signer(fed, session, network_id)
    keys = await protocol.peer_keys(session, link["id"])
    answer = await protocol.call_peer(
        fed,
        sign,
        link,
        keys,
        "POST",
        f"{FED}/{peer}/link",
        {
            "rate": {
                "num": link["rate_num"],
                "den": link["rate_den"],
                "version": link["rate_version"],
            }
        },
    )
    if answer.status >= 400:
        if answer.body.get("code") == "link_rate_mismatch":
            raise LinkRateMismatch(answer.body.get("detail"), peer=peer)
        raise PeerUnreachable(
            f"{peer} refused: {answer.body.get('detail')}", peer_code=answer.body.get("code")
        )
    agreed = (answer.body.get("rate") or {}).get("version")
    if not isinstance(agreed, int) or agreed < link["rate_version"]:
        raise PeerUnreachable(f"{peer} answered without the agreed rate version")
    await _mark_agreed(session, link, agreed)
    return await get_link(session, network_id, peer)


async def _mark_agreed(session: AsyncSession, link: RowMapping, version: int) -> None:
    """Both sides end an agreement at the same rate version: the larger of the two proposals'
    (each side counts its own proposals), so a version never goes back on either side. Only
    the rate that was compared is marked agreed: if an operator changed it meanwhile, the
    agreement is refused and must be made again."""
    marked = await session.scalar(
        text(
            "UPDATE links SET agreed_at = coalesce(agreed_at, now()), rate_version = :v,"
            " status = CASE WHEN status = 'proposed' THEN 'active' ELSE status END"
            " WHERE id = :l AND rate_num = :num AND rate_den = :den RETURNING 1"
        ),
        {"l": link["id"], "v": version, "num": link["rate_num"], "den": link["rate_den"]},
    )
    if marked is None:
        raise LinkRateMismatch("The link's rate changed while it was being agreed: agree again")


async def confirm_link(
    session: AsyncSession, ctx: PeerContext, body: dict[str, Any]
) -> dict[str, Any]:
    """The peer's side of agree_link."""
    link = ctx.link
    rate = body.get("rate") or {}
    try:
        theirs = Fraction(int(rate["num"]), int(rate["den"]))
        version = int(rate["version"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        raise LinkRateMismatch("rate: num, den and version are required") from None
    if theirs != Fraction(link["rate_den"], link["rate_num"]):
        raise LinkRateMismatch(
            f"{ctx.network_code} holds {link['rate_num']}/{link['rate_den']} (version "
            f"{link['rate_version']}); the inverse of it is expected"
        )
    agreed = max(version, link["rate_version"])
    await _mark_agreed(session, link, agreed)
    return {
        "status": "agreed",
        "network": ctx.network_code,
        "rate": {"num": link["rate_num"], "den": link["rate_den"], "version": agreed},
    }


async def update_link(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    data: LinkUpdate,
) -> LinkView:
    """Changes a link's URL, routing or rate. A new rate takes the link out of use until both
    sides agree it again (transfers in flight keep the rate they were sent at; one that
    arrives after the change is refused with rate_mismatch or link_not_active, and its hold
    is voided)."""
    require_operator(principal)
    if data.peer_url is None and data.rate is None and data.default_route is None:
        raise ValidationProblem("Nothing to change: give peer_url, rate or default_route")
    link = await link_row(session, network_id, peer)
    await session.execute(
        text("SELECT 1 FROM links WHERE id = :l FOR NO KEY UPDATE"), {"l": link["id"]}
    )
    link = await link_row(session, network_id, peer)  # as it is now that it is locked
    await explain(session, data.reason)
    new_rate = data.rate is not None and Fraction(data.rate.num, data.rate.den) != Fraction(
        link["rate_num"], link["rate_den"]
    )
    await session.execute(
        text(
            "UPDATE links SET peer_url = coalesce(:u, peer_url),"
            " default_route = coalesce(:dr, default_route),"
            " rate_num = CASE WHEN :new THEN :num ELSE rate_num END,"
            " rate_den = CASE WHEN :new THEN :den ELSE rate_den END,"
            " rate_version = CASE WHEN :new THEN rate_version + 1 ELSE rate_version END,"
            " agreed_at = CASE WHEN :new THEN NULL ELSE agreed_at END,"
            " status = CASE WHEN :new AND status = 'active' THEN 'proposed' ELSE status END"
            " WHERE id = :l"
        ),
        {
            "l": link["id"],
            "u": str(data.peer_url).rstrip("/") if data.peer_url is not None else None,
            "dr": data.default_route,
            "new": new_rate,
            "num": data.rate.num if data.rate is not None else None,
            "den": data.rate.den if data.rate is not None else None,
        },
    )
    return await get_link(session, network_id, peer)


async def set_link_status(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    status: str,
    reason: str,
) -> LinkView:
    """Suspend: no new transfer crosses in either direction (what is in flight still ends as
    its destination decides). Resume: back to active, if both sides had agreed."""
    require_operator(principal)
    link = await link_row(session, network_id, peer)
    if status == "active" and link["agreed_at"] is None:
        raise LinkNotActive("Both sides have not agreed the link's current rate: agree it first")
    await explain(session, reason)
    await session.execute(
        text("UPDATE links SET status = :s, status_reason = :r WHERE id = :l"),
        {"s": status, "r": reason, "l": link["id"]},
    )
    return await get_link(session, network_id, peer)


async def rotate_key(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID
) -> dict[str, Any]:
    """A new signing key; the old one is retired. Every linked peer is told, in a request
    signed with the old key (which it trusts), so it registers the new one."""
    require_operator(principal)
    old_sign = await protocol.signer(fed, session, network_id)
    await protocol.rotate_key(fed, session, network_id)
    new_sign = await protocol.signer(fed, session, network_id)
    public = await session.scalar(
        text("SELECT public_key FROM node_keys WHERE key_id = :k"), {"k": new_sign.key_id}
    )
    links = (
        (
            await session.execute(
                text("SELECT * FROM links WHERE network_id = :n"), {"n": network_id}
            )
        )
        .mappings()
        .all()
    )
    announced: dict[str, str] = {}
    for link in links:
        keys = await protocol.peer_keys(session, link["id"])
        try:
            answer = await protocol.call_peer(
                fed,
                old_sign,
                link,
                keys,
                "POST",
                f"{FED}/{link['peer_code']}/keys",
                {"key_id": new_sign.key_id, "public_key": crypto.b64e(bytes(public))},
            )
            announced[link["peer_code"]] = (
                "registered" if answer.status < 300 else str(answer.body.get("code"))
            )
        except PeerUnreachable as exc:
            announced[link["peer_code"]] = f"unreachable: {exc.detail}"
    return {"key_id": new_sign.key_id, "retired_key_id": old_sign.key_id, "peers": announced}


async def receive_key(
    session: AsyncSession, ctx: PeerContext, body: dict[str, Any]
) -> dict[str, Any]:
    key = PeerKeyCreate.model_validate(body)
    await _add_key(session, ctx.link["id"], key)
    return {"status": "registered", "key_id": key.key_id}


# ---------------------------------------------------------------------------------------------
# Cross-network trades (origin)
# ---------------------------------------------------------------------------------------------


def is_remote(payee: str) -> bool:
    return "/" in payee


async def send_trade(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    key: str,
    data: TradeCreate,
) -> tuple[int | None, uuid.UUID]:
    """Holds the amount toward the link and queues the transfer, in the request's transaction.
    Returns the outbox row to deliver now (None for a replay) and the trade id."""
    require_writer(principal)
    if principal.role is Role.member and data.payer != principal.account_code:
        raise Forbidden("A member key may only pay from its own account")
    network_code = str(
        await session.scalar(text("SELECT code FROM networks WHERE id = :n"), {"n": network_id})
    )
    peer_network, _, account = data.payee.partition("/")
    if not peer_network or not account or peer_network == network_code:
        raise InvalidAddress(f"{data.payee!r}: pay a member of this network by its code alone")
    if data.pending or data.expires_at is not None:
        raise ProblemError(
            "A cross-network trade is held and settled by the protocol: omit pending and expires_at"
        )
    link = await protocol.route(session, network_id, peer_network)
    if link is None:
        raise NoRoute(f"No link leads to {peer_network!r}", network=peer_network)
    fingerprint = request_hash("trade", data.model_dump(mode="json"))
    existing = await session.scalar(
        text("SELECT id FROM trades WHERE network_id = :n AND key = :k"),
        {"n": network_id, "k": key},
    )
    if existing is None:
        if link["status"] != "active":
            raise LinkNotActive(
                f"The link to {link['peer_code']} is {link['status']}", peer=link["peer_code"]
            )
        if protocol.convert(data.amount, link["rate_num"], link["rate_den"]) < 1:
            raise AmountTooSmall(rate=f"{link['rate_num']}/{link['rate_den']}")
    expires_at = datetime.now(UTC) + timedelta(seconds=fed.settings.federation_ttl_seconds)
    link_code = await session.scalar(
        text("SELECT code FROM accounts WHERE id = :a"), {"a": link["account_id"]}
    )
    result = await repository.create_trade(
        session,
        network_id=network_id,
        key=key,
        request_hash=fingerprint,
        payer=data.payer,
        payee=link_code,
        amount=data.amount,
        pending=True,
        expires_at=expires_at,
        description=data.description,
        external_ref=data.external_ref,
        metadata={**data.metadata, "to": data.payee},
        actor=principal.actor,
        kind="federation",
    )
    if result.outcome == "replayed":
        assert result.trade is not None
        return None, uuid.UUID(result.trade["id"])
    if result.outcome != "created":
        # Imported here: trades.service imports this module (to show a trade's transfer).
        from mutualcredit.trades.service import ledger_refusal

        raise ledger_refusal(result, commit=True)
    assert result.trade is not None
    trade_id = uuid.UUID(result.trade["id"])
    row_id = await protocol.insert_outbound(
        session,
        network_id=network_id,
        transfer_id=uuid.uuid4(),
        link=link,
        trade_id=trade_id,
        kind="federation",
        payer_address=f"{network_code}/{data.payer}",
        payee_address=data.payee,
        amount_sent=data.amount,
        expires_at=expires_at,
        description=data.description,
        reference=None,
        first_attempt_in=fed.settings.federation_timeout_seconds + 1,
    )
    return row_id, trade_id


async def transfer_of_trade(session: AsyncSession, trade_id: uuid.UUID) -> TransferView | None:
    row = (
        (
            await session.execute(
                text(
                    "SELECT t.*, l.peer_code FROM transfers t JOIN links l ON l.id = t.link_id"
                    " WHERE t.trade_id = :t ORDER BY t.direction DESC LIMIT 1"
                ),
                {"t": trade_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else transfer_view(row)


def transfer_view(row: RowMapping) -> TransferView:
    return TransferView(
        transfer_id=row["transfer_id"],
        direction=row["direction"],
        peer=row["peer_code"],
        kind=row["kind"],
        status={"prepared": "in_flight", "forwarded": "in_flight"}.get(
            row["status"], row["status"]
        ),
        payer=row["payer_address"],
        payee=row["payee_address"],
        amount_sent=row["amount_sent"],
        amount_received=row["amount_received"],
        rate={"num": row["rate_num"], "den": row["rate_den"], "version": row["rate_version"]},
        expires_at=row["expires_at"],
        refusal_code=row["refusal_code"],
        refusal_detail=row["refusal_detail"],
        seq=row["seq"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        reference=row["reference"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
    )


def refusal_problem(trade_id: uuid.UUID, transfer: TransferView) -> TransferRefused:
    detail = transfer.refusal_detail or {}
    return TransferRefused(
        f"{detail.get('refused_by', transfer.peer)} refused the trade: {transfer.refusal_code}",
        trade_id=str(trade_id),
        transfer_id=str(transfer.transfer_id),
        refused_by=detail.get("refused_by", transfer.peer),
        remote_code=transfer.refusal_code,
        remote_detail={k: v for k, v in detail.items() if k != "refused_by"},
    )


async def list_transfers(
    session: AsyncSession, network_id: uuid.UUID, peer: str, status: str | None, limit: int
) -> list[TransferView]:
    link = await link_row(session, network_id, peer)
    rows = (
        await session.execute(
            text(
                "SELECT t.*, l.peer_code FROM transfers t JOIN links l ON l.id = t.link_id"
                " WHERE t.link_id = :l AND (CAST(:s AS text) IS NULL OR t.status = :s)"
                " ORDER BY t.id DESC LIMIT :lim"
            ),
            {"l": link["id"], "s": status, "lim": limit},
        )
    ).mappings()
    return [transfer_view(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# Statements, reconciliation, checkpoints
# ---------------------------------------------------------------------------------------------


async def statement(session: AsyncSession, link: RowMapping) -> dict[str, Any]:
    """The link's accepted transfers in each direction, in chain order, with hashes, and the
    link account's balance. 'in' chain positions are ours; 'out' ones come from the peer's
    receipts."""
    chains: dict[str, list[dict[str, Any]]] = {}
    for direction in ("in", "out"):
        rows = await session.execute(
            text(
                "SELECT * FROM transfers WHERE link_id = :l AND direction = :d"
                " AND status = 'accepted' ORDER BY seq"
            ),
            {"l": link["id"], "d": direction},
        )
        chains[direction] = [
            {
                "seq": r["seq"],
                "transfer_id": str(r["transfer_id"]),
                "kind": r["kind"],
                "payer": r["payer_address"],
                "payee": r["payee_address"],
                "amount_sent": r["amount_sent"],
                "amount_received": r["amount_received"],
                "rate": {"num": r["rate_num"], "den": r["rate_den"], "version": r["rate_version"]},
                "reference": r["reference"],
                "hash": crypto.b64e(r["chain_hash"]),
            }
            for r in rows.mappings()
        ]
    account = (
        await session.execute(
            text("SELECT balance, pending_debits, pending_credits FROM accounts WHERE id = :a"),
            {"a": link["account_id"]},
        )
    ).one()
    in_flight = (
        await session.execute(
            text(
                "SELECT count(*) AS n, coalesce(sum(amount_sent), 0) AS amount FROM transfers"
                " WHERE link_id = :l AND status IN ('prepared', 'forwarded')"
            ),
            {"l": link["id"]},
        )
    ).one()
    return {
        "network": link["network_code"],
        "peer": link["peer_code"],
        "in": chains["in"],
        "out": chains["out"],
        "balance": account.balance,
        "pending_debits": account.pending_debits,
        "pending_credits": account.pending_credits,
        "in_flight": {"count": in_flight.n, "amount": int(in_flight.amount)},
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
            differences.append({"chain": chain, "seq": seq, "ours": a, "theirs": b})
    return differences


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
    fed: Federation, session: AsyncSession, network_id: uuid.UUID, link: RowMapping
) -> dict[str, Any]:
    sign = await protocol.signer(fed, session, network_id)
    keys = await protocol.peer_keys(session, link["id"])
    answer = await protocol.call_peer(
        fed, sign, link, keys, "GET", f"{FED}/{link['peer_code']}/statement"
    )
    if answer.status >= 400:
        raise PeerUnreachable(
            f"{link['peer_code']} refused: {answer.body.get('detail')}",
            peer_code=answer.body.get("code"),
        )
    return answer.body


async def reconcile(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str
) -> dict[str, Any]:
    """Compares both sides' statements entry by entry, and both ledgers' balances."""
    require_reader(principal)
    link = await link_row(session, network_id, peer)
    ours = await statement(session, link)
    theirs = await fetch_peer_statement(fed, session, network_id, link)
    me, them = link["network_code"], peer
    differences = _compare(ours["out"], theirs["in"], f"{me}->{them}") + _compare(
        ours["in"], theirs["out"], f"{them}->{me}"
    )
    own, peer_from_ours, remainder = _balances(ours)
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
        and ours["balance"] == own
        and theirs["balance"] == peer_from_ours,
        "differences": differences,
        "balances": {
            me: {"ledger": ours["balance"], "from_statement": own},
            them: {"ledger": theirs["balance"], "from_statement": peer_from_ours},
        },
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


async def propose_checkpoint(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str
) -> CheckpointView:
    require_operator(principal)
    link = await link_row(session, network_id, peer)
    me = link["network_code"]
    payload = checkpoint_payload(me, peer, await statement(session, link))
    sign = await protocol.signer(fed, session, network_id)
    signature = sign.sign(crypto.canonical(payload))
    keys = await protocol.peer_keys(session, link["id"])
    answer = await protocol.call_peer(
        fed,
        sign,
        link,
        keys,
        "POST",
        f"{FED}/{peer}/checkpoints",
        {"payload": payload, "key_id": sign.key_id, "signature": signature},
    )
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
    return await _store_checkpoint(session, link["id"], payload, signatures)


async def _store_checkpoint(
    session: AsyncSession, link_id: uuid.UUID, payload: dict[str, Any], signatures: dict[str, Any]
) -> CheckpointView:
    row = (
        await session.execute(
            text(
                "INSERT INTO link_checkpoints (link_id, payload, signatures)"
                " VALUES (:l, CAST(:p AS jsonb), CAST(:s AS jsonb)) RETURNING id, created_at"
            ),
            {
                "l": link_id,
                "p": orjson.dumps(payload).decode(),
                "s": orjson.dumps(signatures).decode(),
            },
        )
    ).one()
    return CheckpointView(
        id=row.id, payload=payload, signatures=signatures, created_at=row.created_at
    )


async def countersign_checkpoint(
    fed: Federation, session: AsyncSession, ctx: PeerContext, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    link = (
        (
            await session.execute(
                text(
                    "SELECT l.*, n.code AS network_code FROM links l"
                    " JOIN networks n ON n.id = l.network_id WHERE l.id = :l"
                ),
                {"l": ctx.link["id"]},
            )
        )
        .mappings()
        .one()
    )
    peer = link["peer_code"]
    theirs = body.get("payload")
    mine = checkpoint_payload(link["network_code"], peer, await statement(session, link))
    keys = await protocol.peer_keys(session, link["id"])
    key = keys.get(str(body.get("key_id")))
    if (
        key is None
        or not isinstance(theirs, dict)
        or not crypto.verify(key, str(body.get("signature")), crypto.canonical(theirs))
    ):
        raise CheckpointMismatch("The checkpoint is not signed by your registered key")
    if theirs != mine:
        return 409, {
            "code": "checkpoint_mismatch",
            "detail": "Our records differ at this point: reconcile first",
            "theirs": mine,
        }
    sign = await protocol.signer(fed, session, ctx.network_id)
    signature = sign.sign(crypto.canonical(mine))
    await _store_checkpoint(
        session,
        link["id"],
        mine,
        {
            link["network_code"]: {"key_id": sign.key_id, "signature": signature},
            peer: {"key_id": body["key_id"], "signature": body["signature"]},
        },
    )
    return 200, {"key_id": sign.key_id, "signature": signature}


async def list_checkpoints(
    session: AsyncSession, network_id: uuid.UUID, peer: str
) -> list[CheckpointView]:
    link = await link_row(session, network_id, peer)
    rows = await session.execute(
        text(
            "SELECT id, payload, signatures, created_at FROM link_checkpoints"
            " WHERE link_id = :l ORDER BY id DESC LIMIT 100"
        ),
        {"l": link["id"]},
    )
    return [
        CheckpointView(id=r.id, payload=r.payload, signatures=r.signatures, created_at=r.created_at)
        for r in rows
    ]


# ---------------------------------------------------------------------------------------------
# Settlements
# ---------------------------------------------------------------------------------------------


async def record_settlement(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    data: SettlementCreate,
) -> tuple[SettlementView, int | None]:
    """Records a settlement agreed with the peer (paid outside the ledger). The side that is
    owed (its link account is negative) executes it as a transfer; the side that owes only
    records it, and accepts the transfer when it comes. Returns the outbox row to deliver."""
    require_operator(principal)
    link = await link_row(session, network_id, peer)
    # The settlement's row first, then its accounts: the order the peer's settlement transfer
    # takes them in when it arrives (protocol._book_here).
    earlier = (
        (
            await session.execute(
                text(
                    "SELECT id, amount, status FROM settlements"
                    " WHERE link_id = :l AND reference = :r FOR UPDATE"
                ),
                {"l": link["id"], "r": data.reference},
            )
        )
        .mappings()
        .one_or_none()
    )
    # Both accounts the settlement books, locked in id order as every writer does.
    locked: dict[uuid.UUID, int] = dict(
        (
            await session.execute(
                text(
                    "SELECT id, balance FROM accounts WHERE id IN (:a, :s) ORDER BY id FOR UPDATE"
                ),
                {"a": link["account_id"], "s": link["settlement_account_id"]},
            )
        ).all()
    )
    balance = int(locked[link["account_id"]])
    if (balance > 0 and data.amount > balance) or balance == 0:
        raise SettlementInvalid(
            f"The link balance is {balance}: a settlement of {data.amount} would not move it "
            "toward zero",
            link_balance=balance,
        )
    executes = balance < 0
    if executes and data.amount > -balance:
        raise SettlementInvalid(
            f"The peer owes {-balance}: a settlement of {data.amount} is more",
            link_balance=balance,
        )
    if executes and link["status"] != "active":
        raise LinkNotActive(f"The link to {peer} is {link['status']}", peer=peer)
    network_code = link["network_code"]
    if earlier is not None:
        # A settlement the peer refused (say, because its operator had not recorded it yet)
        # may be sent again under the same reference, for the same amount: its refused
        # transfer stays in the link's history, and a new transfer carries it.
        if not (executes and earlier["status"] == "refused" and earlier["amount"] == data.amount):
            raise SettlementExists(reference=data.reference)
        settlement_id = earlier["id"]
        await session.execute(
            text("UPDATE settlements SET status = 'agreed' WHERE id = :i"), {"i": settlement_id}
        )
    else:
        try:
            async with session.begin_nested():
                settlement_id = await session.scalar(
                    text(
                        "INSERT INTO settlements (link_id, reference, amount, status, created_by)"
                        " VALUES (:l, :r, :a, 'agreed', :by) RETURNING id"
                    ),
                    {"l": link["id"], "r": data.reference, "a": data.amount, "by": principal.actor},
                )
        except IntegrityError as exc:  # recorded concurrently under the same reference
            raise SettlementExists(reference=data.reference) from exc
    row_id = None
    if executes:
        codes: dict[uuid.UUID, str] = dict(
            (
                await session.execute(
                    text("SELECT id, code FROM accounts WHERE id IN (:a, :b)"),
                    {"a": link["account_id"], "b": link["settlement_account_id"]},
                )
            ).all()
        )
        transfer_id = uuid.uuid4()
        expires_at = datetime.now(UTC) + timedelta(seconds=fed.settings.federation_ttl_seconds)
        result = await repository.create_trade(
            session,
            network_id=network_id,
            key=f"settlement:{transfer_id}",
            request_hash=request_hash("settlement", data.model_dump(mode="json")),
            payer=codes[link["settlement_account_id"]],
            payee=codes[link["account_id"]],
            amount=data.amount,
            pending=True,
            expires_at=expires_at,
            description=f"Settlement {data.reference} with {peer}",
            external_ref=data.reference,
            metadata={},
            actor=principal.actor,
            kind="settlement",
        )
        if result.outcome != "created" or result.trade is None:
            from mutualcredit.trades.service import ledger_refusal

            raise ledger_refusal(result, commit=False)
        row_id = await protocol.insert_outbound(
            session,
            network_id=network_id,
            transfer_id=transfer_id,
            link=link,
            trade_id=uuid.UUID(result.trade["id"]),
            kind="settlement",
            payer_address=f"{network_code}/{codes[link['settlement_account_id']]}",
            payee_address=f"{peer}/{SETTLEMENT_PREFIX}{network_code}",
            amount_sent=data.amount,
            expires_at=expires_at,
            description=f"Settlement {data.reference}",
            reference=data.reference,
            first_attempt_in=fed.settings.federation_timeout_seconds + 1,
        )
        await session.execute(
            text("UPDATE settlements SET status = 'sent', transfer_id = :t WHERE id = :i"),
            {"t": transfer_id, "i": settlement_id},
        )
    return await get_settlement(session, settlement_id), row_id


async def get_settlement(session: AsyncSession, settlement_id: uuid.UUID) -> SettlementView:
    row = (
        (
            await session.execute(
                text(
                    "SELECT s.*, l.peer_code FROM settlements s JOIN links l ON l.id = s.link_id"
                    " WHERE s.id = :i"
                ),
                {"i": settlement_id},
            )
        )
        .mappings()
        .one()
    )
    return SettlementView(
        id=row["id"],
        peer=row["peer_code"],
        reference=row["reference"],
        amount=row["amount"],
        status=row["status"],
        transfer_id=row["transfer_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


async def list_settlements(
    session: AsyncSession, network_id: uuid.UUID, peer: str
) -> list[SettlementView]:
    link = await link_row(session, network_id, peer)
    ids = (
        await session.execute(
            text(
                "SELECT id FROM settlements WHERE link_id = :l ORDER BY created_at DESC LIMIT 100"
            ),
            {"l": link["id"]},
        )
    ).scalars()
    return [await get_settlement(session, i) for i in ids]
