"""The federation protocol: signed calls between networks, and a cross-network trade's life.

A trade from `alpha/ann` to `bravo/bob`:

1. alpha, in one transaction: a hold from ann to `link.bravo` (kind 'federation') and a transfer
   row 'out' (the outbox). Committed before anything is sent: a crash after this point is
   recovered from the row, and before it nothing happened.
2. alpha sends the transfer (signed). bravo, in one transaction, decides and records: before the
   expiry, it books `link.alpha` -> bob within its own limits and appends the transfer to the
   link's chain (seq, running hash), or it records a refusal; after the expiry it records a
   refusal. The answer is a signed receipt. A duplicate delivery returns the recorded receipt.
3. alpha applies the receipt, in one transaction: accepted posts the hold, refused voids it.
   Until it has a receipt it keeps the hold and sends again (the same message: delivery is the
   status query), with backoff, from the outbox, in every worker, after any restart.

A hub (a network with links to both) receives a transfer for a third network like any other,
holds `link.alpha` -> `link.charlie` with an expiry shorter by the hop margin, and sends it on;
it answers 'pending' until the next hop's receipt is final, then posts or voids its hold and
answers with its own final receipt. The outcome is always decided by the last network, before
its expiry, which is the shortest on the route: so no network ever has to guess.
"""

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mutualcredit.config import Settings
from mutualcredit.federation import crypto
from mutualcredit.federation.errors import (
    PeerForbidden,
    PeerReplay,
    PeerSignatureInvalid,
    PeerSignatureMissing,
    PeerSignatureStale,
    PeerUnknown,
    PeerUnreachable,
    TransferConflict,
)
from mutualcredit.trades import repository

log = logging.getLogger("mutualcredit.federation")

FED = "/federation/v1/networks"


@dataclass
class Federation:
    """What the protocol needs, kept on app.state.federation."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    http: httpx.AsyncClient
    _secret_key: bytes | None = None

    @property
    def secret_key(self) -> bytes:
        """Loaded when federation first needs it: a deployment that never federates needs
        no secret key (nor a writable data directory)."""
        if self._secret_key is None:
            self._secret_key = crypto.load_secret_key(
                self.settings.secret_key, self.settings.data_dir
            )
        return self._secret_key

    @property
    def public_url(self) -> str:
        return self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


async def ensure_key(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> None:
    """Every network gets its first key when federation first needs one."""
    exists = await session.scalar(
        text("SELECT 1 FROM node_keys WHERE network_id = :n AND status = 'active'"),
        {"n": network_id},
    )
    if exists:
        return
    code = await session.scalar(text("SELECT code FROM networks WHERE id = :n"), {"n": network_id})
    key = crypto.new_node_key(str(code), fed.secret_key)
    await session.execute(
        text(
            "INSERT INTO node_keys (network_id, key_id, public_key, sealed_private_key)"
            " VALUES (:n, :k, :p, :s)"
            " ON CONFLICT (network_id) WHERE status = 'active' DO NOTHING"
        ),
        {"n": network_id, "k": key.key_id, "p": key.public_key, "s": key.sealed_private_key},
    )


async def signer(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> crypto.Signer:
    await ensure_key(fed, session, network_id)
    row = (
        await session.execute(
            text(
                "SELECT k.key_id, k.sealed_private_key, n.code FROM node_keys k"
                " JOIN networks n ON n.id = k.network_id"
                " WHERE k.network_id = :n AND k.status = 'active'"
            ),
            {"n": network_id},
        )
    ).one()
    return crypto.Signer(
        network_code=row.code,
        key_id=row.key_id,
        private_key=crypto.unseal(row.sealed_private_key, row.key_id, fed.secret_key),
    )


async def rotate_key(fed: Federation, session: AsyncSession, network_id: uuid.UUID) -> str:
    """Retires the active key and makes a new one; returns the retired key's id."""
    await ensure_key(fed, session, network_id)
    old = await session.scalar(
        text(
            "UPDATE node_keys SET status = 'retired', retired_at = now()"
            " WHERE network_id = :n AND status = 'active' RETURNING key_id"
        ),
        {"n": network_id},
    )
    await ensure_key(fed, session, network_id)
    return str(old)


# ---------------------------------------------------------------------------------------------
# Signed calls
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCall:
    status: int
    body: dict[str, Any]


async def peer_keys(session: AsyncSession, link_id: uuid.UUID) -> dict[str, bytes]:
    rows = await session.execute(
        text(
            "SELECT key_id, public_key FROM link_peer_keys WHERE link_id = :l AND status = 'active'"
        ),
        {"l": link_id},
    )
    return {r.key_id: r.public_key for r in rows}


async def call_peer(
    fed: Federation,
    sign: crypto.Signer,
    link: RowMapping,
    keys: dict[str, bytes],
    method: str,
    path: str,
    payload: dict[str, Any] | None = None,
    *,
    seconds: float | None = None,
) -> PeerCall:
    """Sends a signed request to the link's peer and checks the signature of its answer.

    Raises PeerUnreachable for anything that is not a verified answer (network errors, 5xx,
    unsigned or wrongly signed answers); a verified 4xx is returned for the caller to read."""
    body = b"" if payload is None else crypto.canonical(payload)
    created = str(int(time.time()))
    nonce = secrets.token_urlsafe(18)
    base = crypto.request_base(
        method, path, sign.network_code, link["peer_code"], created, nonce, body
    )
    headers = {
        "MC-From": sign.network_code,
        "MC-To": link["peer_code"],
        "MC-Key-Id": sign.key_id,
        "MC-Created": created,
        "MC-Nonce": nonce,
        "MC-Signature": sign.sign(base),
        "Content-Type": "application/json",
    }
    url = link["peer_url"].rstrip("/") + path
    try:
        response = await fed.http.request(
            method,
            url,
            content=body,
            headers=headers,
            timeout=seconds or fed.settings.federation_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise PeerUnreachable(f"{link['peer_code']}: {type(exc).__name__}") from exc
    raw = response.content
    try:
        answer = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        answer = {}
    if response.status_code >= 500:
        raise PeerUnreachable(
            f"{link['peer_code']} answered {response.status_code}",
            peer_status=response.status_code,
            peer_code=answer.get("code") if isinstance(answer, dict) else None,
        )
    key_id = response.headers.get("MC-Key-Id", "")
    signature = response.headers.get("MC-Signature", "")
    if response.status_code < 300:
        key = keys.get(key_id)
        if key is None or not crypto.verify(
            key, signature, crypto.response_base(nonce, response.status_code, raw)
        ):
            raise PeerUnreachable(f"{link['peer_code']} sent an answer not signed by its key")
    if not isinstance(answer, dict):
        raise PeerUnreachable(f"{link['peer_code']} sent an answer that is not an object")
    return PeerCall(status=response.status_code, body=answer)


@dataclass(frozen=True, slots=True)
class PeerContext:
    """An authenticated node-to-node request: who sent it, over which link, to which network."""

    network_id: uuid.UUID
    network_code: str
    link: RowMapping
    nonce: str


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who a node-to-node request says it is from, checked against this network's records:
    everything about its authentication that does not need the body."""

    link: RowMapping
    public_key: bytes
    values: dict[str, str]


async def identify_peer(session: AsyncSession, network_code: str, headers: Any) -> PeerIdentity:
    """Checks a node-to-node request's headers: signed, for this network, by a key registered
    for the sending network on this network's link to it. Raises the matching problem
    otherwise. auth.gate runs it before the body is read, authenticate_peer after."""
    values = {h: headers.get(h) for h in crypto.SIGNED_HEADERS}
    if any(not v for v in values.values()):
        raise PeerSignatureMissing("Sign node-to-node requests (MC-* headers)")
    sender, receiver = values["mc-from"], values["mc-to"]
    if receiver != network_code:
        raise PeerForbidden("MC-To does not name the network of this path")
    link = (
        (
            await session.execute(
                text(
                    "SELECT l.*, n.code AS network_code FROM links l"
                    " JOIN networks n ON n.id = l.network_id"
                    " WHERE n.code = :code AND l.peer_code = :peer"
                ),
                {"code": network_code, "peer": sender},
            )
        )
        .mappings()
        .one_or_none()
    )
    if link is None:
        raise PeerUnknown(f"{network_code} has no link to {sender!r}")
    public_key = await session.scalar(
        text(
            "SELECT public_key FROM link_peer_keys"
            " WHERE link_id = :l AND key_id = :k AND status = 'active'"
        ),
        {"l": link["id"], "k": values["mc-key-id"]},
    )
    if public_key is None:
        raise PeerUnknown(f"Key {values['mc-key-id']!r} is not registered for {sender}")
    return PeerIdentity(link, public_key, {name: str(value) for name, value in values.items()})


async def authenticate_peer(
    fed: Federation,
    session: AsyncSession,
    network_code: str,
    method: str,
    path: str,
    headers: Any,
    body: bytes,
) -> PeerContext:
    """Checks a node-to-node request: signed, fresh, not replayed, by a key registered for the
    sending network on this network's link to it. Raises the matching problem otherwise."""
    identity = await identify_peer(session, network_code, headers)
    link, public_key, values = identity.link, identity.public_key, identity.values
    sender, receiver = values["mc-from"], values["mc-to"]
    try:
        created = int(values["mc-created"])
    except ValueError:
        raise PeerSignatureInvalid("MC-Created must be unix seconds") from None
    if abs(time.time() - created) > fed.settings.federation_clock_skew_seconds:
        raise PeerSignatureStale(
            "The request was signed outside the allowed clock skew",
            skew_seconds=fed.settings.federation_clock_skew_seconds,
        )
    base = crypto.request_base(
        method, path, sender, receiver, values["mc-created"], values["mc-nonce"], body
    )
    if not crypto.verify(public_key, values["mc-signature"], base):
        raise PeerSignatureInvalid()
    fresh = await session.scalar(
        text(
            "INSERT INTO federation_nonces (link_id, nonce) VALUES (:l, :n)"
            " ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {"l": link["id"], "n": values["mc-nonce"]},
    )
    if not fresh:
        raise PeerReplay()
    return PeerContext(
        network_id=link["network_id"],
        network_code=network_code,
        link=link,
        nonce=str(values["mc-nonce"]),
    )


# ---------------------------------------------------------------------------------------------
# Transfers: messages, chains, conversion
# ---------------------------------------------------------------------------------------------


def convert(amount: int, num: int, den: int) -> int:
    """Exact conversion, rounded down (toward zero: amounts are positive). What is rounded away
    stays with the sending side; reconciliation reports it as the link's tracked remainder."""
    return amount * num // den


def message(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    """The transfer as sent: identical bytes on every delivery of it."""
    return {
        "transfer_id": str(row["transfer_id"]),
        "kind": row["kind"],
        "payer": row["payer_address"],
        "payee": row["payee_address"],
        "amount_sent": row["amount_sent"],
        "amount_received": row["amount_received"],
        "rate": {"num": row["rate_num"], "den": row["rate_den"], "version": row["rate_version"]},
        "expires_at": _iso(row["expires_at"]),
        "description": row["description"],
        "reference": row["reference"],
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message_hash(msg: dict[str, Any]) -> bytes:
    return hashlib.sha256(crypto.canonical(msg)).digest()


def genesis(sender: str, receiver: str) -> bytes:
    return hashlib.sha256(f"mutualcredit link chain {sender}->{receiver}".encode()).digest()


def chain_entry(row: RowMapping | dict[str, Any], seq: int) -> bytes:
    return crypto.canonical(
        [
            str(row["transfer_id"]),
            seq,
            row["kind"],
            row["payer_address"],
            row["payee_address"],
            row["amount_sent"],
            row["amount_received"],
            row["rate_num"],
            row["rate_den"],
            row["rate_version"],
            row["reference"],
        ]
    )


def chain_next(prev: bytes, row: RowMapping | dict[str, Any], seq: int) -> bytes:
    return hashlib.sha256(prev + chain_entry(row, seq)).digest()


def receipt_of(row: RowMapping, network_code: str, prev_hash: bytes | None) -> dict[str, Any]:
    """What the receiving side answers about an inbound transfer."""
    status = {"forwarded": "pending"}.get(row["status"], row["status"])
    return {
        "transfer_id": str(row["transfer_id"]),
        "network": network_code,
        "status": status,
        "amount_received": row["amount_received"],
        "seq": row["seq"],
        "prev_hash": crypto.b64e(prev_hash) if prev_hash is not None else None,
        "chain_hash": crypto.b64e(row["chain_hash"]) if row["chain_hash"] else None,
        "code": row["refusal_code"],
        "detail": row["refusal_detail"],
        "decided_at": _iso(row["resolved_at"]) if row["resolved_at"] else None,
    }


# ---------------------------------------------------------------------------------------------
# Receiving a transfer (destination or hub)
# ---------------------------------------------------------------------------------------------

_IN_ROW = text(
    "SELECT * FROM transfers WHERE network_id = :n AND transfer_id = :t AND direction = :d"
)


async def _prev_hash(session: AsyncSession, row: RowMapping, sender: str, receiver: str) -> bytes:
    if row["seq"] is None or row["seq"] == 1:
        return genesis(sender, receiver)
    prev = await session.scalar(
        text("SELECT chain_hash FROM transfers WHERE link_id = :l AND direction = :d AND seq = :s"),
        {"l": row["link_id"], "d": row["direction"], "s": row["seq"] - 1},
    )
    return bytes(prev) if prev is not None else genesis(sender, receiver)


async def inbound_receipt(
    session: AsyncSession, ctx: PeerContext, transfer_id: uuid.UUID
) -> dict[str, Any] | None:
    row = (
        (await session.execute(_IN_ROW, {"n": ctx.network_id, "t": transfer_id, "d": "in"}))
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    if row["link_id"] != ctx.link["id"]:
        raise PeerForbidden("That transfer did not come over your link")
    prev = (
        await _prev_hash(session, row, ctx.link["peer_code"], ctx.network_code)
        if row["status"] == "accepted"
        else None
    )
    return receipt_of(row, ctx.network_code, prev)


def _parse_address(address: str) -> tuple[str, str]:
    network, _, account = address.partition("/")
    return network, account


async def receive(
    fed: Federation, session: AsyncSession, ctx: PeerContext, msg: dict[str, Any]
) -> tuple[dict[str, Any], int | None]:
    """Decides an inbound transfer (first delivery) or answers what was decided (any later
    one). Returns the receipt and, at a hub, the id of the outbound row to deliver now."""
    transfer_id = uuid.UUID(msg["transfer_id"])
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"{ctx.network_id}/transfer/{transfer_id}"},
    )
    digest = message_hash(msg)
    existing = (
        (await session.execute(_IN_ROW, {"n": ctx.network_id, "t": transfer_id, "d": "in"}))
        .mappings()
        .one_or_none()
    )
    if existing is not None:
        if existing["link_id"] != ctx.link["id"]:
            raise PeerForbidden("That transfer did not come over your link")
        if bytes(existing["request_hash"]) != digest:
            raise TransferConflict(transfer_id=str(transfer_id))
        receipt = await inbound_receipt(session, ctx, transfer_id)
        assert receipt is not None
        return receipt, None

    link = ctx.link
    now = datetime.now(UTC)
    expires_at = datetime.fromisoformat(msg["expires_at"])
    refusal: tuple[str, dict[str, Any]] | None = None
    network, account = _parse_address(msg["payee"])
    rate = msg["rate"]
    if expires_at <= now:
        refusal = ("transfer_expired", {"expires_at": msg["expires_at"]})
    elif link["status"] != "active":
        refusal = ("link_not_active", {"link_status": link["status"]})
    elif rate["version"] != link["rate_version"] or (
        Fraction(rate["num"], rate["den"]) != Fraction(link["rate_den"], link["rate_num"])
    ):
        refusal = ("rate_mismatch", {"rate_version": link["rate_version"]})
    elif msg["amount_received"] != convert(msg["amount_sent"], rate["num"], rate["den"]):
        refusal = ("amount_mismatch", {})
    elif msg["amount_received"] < 1:
        refusal = ("amount_too_small", {})

    out_row_id: int | None = None
    row_values = {
        "network_id": ctx.network_id,
        "transfer_id": transfer_id,
        "link_id": link["id"],
        "kind": msg["kind"],
        "payer_address": msg["payer"],
        "payee_address": msg["payee"],
        "amount_sent": msg["amount_sent"],
        "amount_received": msg["amount_received"],
        "rate_num": rate["num"],
        "rate_den": rate["den"],
        "rate_version": rate["version"],
        "reference": msg.get("reference"),
        "description": msg.get("description") or "",
        "expires_at": expires_at,
        "request_hash": digest,
    }
    trade_id: uuid.UUID | None = None
    status = "refused"
    if refusal is None and network == ctx.network_code:
        trade_id, refusal = await _book_here(session, ctx, msg, account)
        status = "accepted" if refusal is None else "refused"
    elif refusal is None:
        if msg["kind"] != "federation":
            refusal = ("no_route", {"network": network})
        else:
            forwarded, refused = await _forward(fed, session, ctx, msg, network, row_values)
            if refused is not None:
                refusal = refused
            else:
                assert forwarded is not None
                trade_id, out_row_id = forwarded
                status = "forwarded"

    seq: int | None = None
    chain_hash: bytes | None = None
    if status == "accepted":
        seq, chain_hash = await _append_to_chain(
            session, row_values, ctx.link["peer_code"], ctx.network_code
        )
    code, detail = refusal if refusal is not None else (None, None)
    await session.execute(
        text(
            "INSERT INTO transfers (network_id, transfer_id, link_id, direction, kind, status,"
            " trade_id, payer_address, payee_address, amount_sent, amount_received, rate_num,"
            " rate_den, rate_version, reference, description, expires_at, request_hash,"
            " refusal_code, refusal_detail, seq, chain_hash, resolved_at)"
            " VALUES (:network_id, :transfer_id, :link_id, 'in', :kind, :status, :trade_id,"
            " :payer_address, :payee_address, :amount_sent, :amount_received, :rate_num,"
            " :rate_den, :rate_version, :reference, :description, :expires_at, :request_hash,"
            " :code, CAST(:detail AS jsonb), :seq, :chain_hash,"
            " CASE WHEN :status IN ('accepted', 'refused') THEN clock_timestamp() END)"
        ),
        {
            **row_values,
            "status": status,
            "trade_id": trade_id,
            "code": code,
            "detail": orjson.dumps(detail).decode() if detail is not None else None,
            "seq": seq,
            "chain_hash": chain_hash,
        },
    )
    receipt = await inbound_receipt(session, ctx, transfer_id)
    assert receipt is not None
    return receipt, out_row_id


async def _book_here(
    session: AsyncSession, ctx: PeerContext, msg: dict[str, Any], account: str
) -> tuple[uuid.UUID | None, tuple[str, dict[str, Any]] | None]:
    """The last network: book link account -> payee, within this network's own limits."""
    link = ctx.link
    link_code = await session.scalar(
        text("SELECT code FROM accounts WHERE id = :a"), {"a": link["account_id"]}
    )
    if msg["kind"] == "settlement":
        agreed = await session.scalar(
            text(
                "SELECT 1 FROM settlements WHERE link_id = :l AND reference = :r"
                " AND amount = :a AND status = 'agreed' FOR UPDATE"
            ),
            {"l": link["id"], "r": msg.get("reference"), "a": msg["amount_received"]},
        )
        settlement_code = await session.scalar(
            text("SELECT code FROM accounts WHERE id = :a"),
            {"a": link["settlement_account_id"]},
        )
        if not agreed or account != settlement_code:
            return None, ("settlement_not_agreed", {"reference": msg.get("reference")})
        balance = await session.scalar(
            text("SELECT balance FROM accounts WHERE id = :a"), {"a": link["account_id"]}
        )
        if balance is None or balance < msg["amount_received"]:
            return None, ("settlement_invalid", {"link_balance": balance})
    result = await repository.create_trade(
        session,
        network_id=ctx.network_id,
        key=f"federation:{msg['transfer_id']}",
        request_hash=message_hash(msg),
        payer=link_code,
        payee=account,
        amount=msg["amount_received"],
        pending=False,
        expires_at=None,
        description=msg.get("description") or "",
        external_ref=None,
        metadata={"transfer_id": msg["transfer_id"], "from": msg["payer"]},
        actor=f"peer:{link['peer_code']}",
        kind=msg["kind"],
    )
    if result.outcome in ("created", "replayed"):
        assert result.trade is not None
        if msg["kind"] == "settlement":
            await session.execute(
                text(
                    "UPDATE settlements SET status = 'executed', transfer_id = :t"
                    " WHERE link_id = :l AND reference = :r"
                ),
                {"t": uuid.UUID(msg["transfer_id"]), "l": link["id"], "r": msg.get("reference")},
            )
        return uuid.UUID(result.trade["id"]), None
    return None, (result.problem_code or "refused", result.problem_detail)


async def _append_to_chain(
    session: AsyncSession, row: RowMapping | dict[str, Any], sender: str, receiver: str
) -> tuple[int, bytes]:
    """Gives an accepted inbound transfer the next place in its link's chain (the link row is
    locked: one append at a time per link).

    FOR NO KEY UPDATE, not FOR UPDATE: every signed request already holds a KEY SHARE lock on
    this row (its nonce row references the link), and FOR UPDATE would wait for all of them
    while they wait for the accounts this transaction holds: a deadlock under load."""
    head = (
        await session.execute(
            text("SELECT in_seq, in_hash FROM links WHERE id = :l FOR NO KEY UPDATE"),
            {"l": row["link_id"]},
        )
    ).one()
    seq = head.in_seq + 1
    prev = bytes(head.in_hash) if head.in_hash else genesis(sender, receiver)
    chain_hash = chain_next(prev, row, seq)
    await session.execute(
        text("UPDATE links SET in_seq = :s, in_hash = :h WHERE id = :l"),
        {"s": seq, "h": chain_hash, "l": row["link_id"]},
    )
    return seq, chain_hash


async def _forward(
    fed: Federation,
    session: AsyncSession,
    ctx: PeerContext,
    msg: dict[str, Any],
    network: str,
    row: dict[str, Any],
) -> tuple[tuple[uuid.UUID, int] | None, tuple[str, dict[str, Any]] | None]:
    """A hub: hold link-in -> link-out and queue the next hop, with a shorter expiry.
    Returns ((hold, outbox row), None), or (None, refusal)."""
    nxt = await route(session, ctx.network_id, network, exclude=ctx.link["id"])
    if nxt is None:
        return None, ("no_route", {"network": network})
    if nxt["status"] != "active":
        return None, ("link_not_active", {"link": nxt["peer_code"]})
    margin = timedelta(seconds=fed.settings.federation_hop_margin_seconds)
    expires_at = row["expires_at"] - margin
    if expires_at <= datetime.now(UTC) + margin / 2:
        return None, ("expiry_too_short", {"expires_at": msg["expires_at"]})
    amount_out = convert(msg["amount_received"], nxt["rate_num"], nxt["rate_den"])
    if amount_out < 1:
        return None, ("amount_too_small", {})
    codes: dict[uuid.UUID, str] = dict(
        (
            await session.execute(
                text("SELECT id, code FROM accounts WHERE id IN (:a, :b)"),
                {"a": ctx.link["account_id"], "b": nxt["account_id"]},
            )
        ).all()
    )
    result = await repository.create_trade(
        session,
        network_id=ctx.network_id,
        key=f"federation:{msg['transfer_id']}",
        request_hash=message_hash(msg),
        payer=codes[ctx.link["account_id"]],
        payee=codes[nxt["account_id"]],
        amount=msg["amount_received"],
        pending=True,
        expires_at=expires_at,
        description=msg.get("description") or "",
        external_ref=None,
        metadata={"transfer_id": msg["transfer_id"], "to": msg["payee"]},
        actor=f"peer:{ctx.link['peer_code']}",
        kind="federation",
    )
    if result.outcome != "created" or result.trade is None:
        return None, (result.problem_code or "refused", result.problem_detail)
    trade_id = uuid.UUID(result.trade["id"])
    out_id = await insert_outbound(
        session,
        network_id=ctx.network_id,
        transfer_id=uuid.UUID(msg["transfer_id"]),
        link=nxt,
        trade_id=trade_id,
        kind="federation",
        payer_address=msg["payer"],
        payee_address=msg["payee"],
        amount_sent=msg["amount_received"],
        expires_at=expires_at,
        description=msg.get("description") or "",
        reference=None,
        first_attempt_in=fed.settings.federation_timeout_seconds,
    )
    return (trade_id, out_id), None


async def route(
    session: AsyncSession, network_id: uuid.UUID, network: str, exclude: uuid.UUID | None = None
) -> RowMapping | None:
    """The link toward `network`: a direct link to it, else the default route."""
    rows = (
        (
            await session.execute(
                text(
                    "SELECT * FROM links WHERE network_id = :n"
                    " AND (peer_code = :p OR default_route)"
                    " ORDER BY (peer_code = :p) DESC, created_at LIMIT 2"
                ),
                {"n": network_id, "p": network},
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        if row["id"] != exclude:
            return row
    return None


async def insert_outbound(
    session: AsyncSession,
    *,
    network_id: uuid.UUID,
    transfer_id: uuid.UUID,
    link: RowMapping,
    trade_id: uuid.UUID,
    kind: str,
    payer_address: str,
    payee_address: str,
    amount_sent: int,
    expires_at: datetime,
    description: str,
    reference: str | None,
    first_attempt_in: float,
) -> int:
    values: dict[str, Any] = {
        "transfer_id": transfer_id,
        "kind": kind,
        "payer_address": payer_address,
        "payee_address": payee_address,
        "amount_sent": amount_sent,
        "amount_received": convert(amount_sent, link["rate_num"], link["rate_den"]),
        "rate_num": link["rate_num"],
        "rate_den": link["rate_den"],
        "rate_version": link["rate_version"],
        "expires_at": expires_at,
        "description": description,
        "reference": reference,
    }
    row_id = await session.scalar(
        text(
            "INSERT INTO transfers (network_id, transfer_id, link_id, direction, kind, status,"
            " trade_id, payer_address, payee_address, amount_sent, amount_received, rate_num,"
            " rate_den, rate_version, reference, description, expires_at, request_hash,"
            " next_attempt_at)"
            " VALUES (:n, :transfer_id, :l, 'out', :kind, 'prepared', :trade_id,"
            " :payer_address, :payee_address, :amount_sent, :amount_received, :rate_num,"
            " :rate_den, :rate_version, :reference, :description, :expires_at, :hash,"
            " clock_timestamp() + make_interval(secs => :later))"
            " RETURNING id"
        ),
        {
            **values,
            "n": network_id,
            "l": link["id"],
            "trade_id": trade_id,
            "hash": message_hash(message(values)),
            "later": first_attempt_in,
        },
    )
    return int(row_id)


# ---------------------------------------------------------------------------------------------
# Sending: deliver a transfer from the outbox, apply the receipt
# ---------------------------------------------------------------------------------------------


async def deliver(fed: Federation, row_id: int, *, seconds: float | None = None) -> str:
    """Sends one outbound transfer (again) and applies a final receipt. Returns its status."""
    async with fed.sessionmaker.begin() as session:
        row = (
            (await session.execute(text("SELECT * FROM transfers WHERE id = :i"), {"i": row_id}))
            .mappings()
            .one()
        )
        if row["status"] != "prepared":
            return str(row["status"])
        link = (
            (
                await session.execute(
                    text("SELECT * FROM links WHERE id = :l"), {"l": row["link_id"]}
                )
            )
            .mappings()
            .one()
        )
        sign = await signer(fed, session, row["network_id"])
        keys = await peer_keys(session, link["id"])
    path = f"{FED}/{link['peer_code']}/transfers"
    try:
        answer = await call_peer(fed, sign, link, keys, "POST", path, message(row), seconds=seconds)
    except PeerUnreachable as exc:
        await _note_error(fed, row_id, exc.detail)
        return "prepared"
    receipt = answer.body
    if answer.status >= 400 or receipt.get("transfer_id") != str(row["transfer_id"]):
        await _note_error(fed, row_id, f"{answer.status} {receipt.get('code')}")
        return "prepared"
    if receipt.get("status") not in ("accepted", "refused"):
        return "prepared"
    return await apply_receipt(fed, row_id, receipt, sign.network_code, link["peer_code"])


async def _note_error(fed: Federation, row_id: int, error: str) -> None:
    log.warning("transfer delivery failed: %s", error)
    async with fed.sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE transfers SET last_error = :e WHERE id = :i AND status = 'prepared'"),
            {"e": error[:500], "i": row_id},
        )


async def apply_receipt(
    fed: Federation, row_id: int, receipt: dict[str, Any], own: str, peer: str
) -> str:
    async with fed.sessionmaker.begin() as session:
        row = (
            (
                await session.execute(
                    text("SELECT * FROM transfers WHERE id = :i FOR UPDATE"), {"i": row_id}
                )
            )
            .mappings()
            .one()
        )
        if row["status"] != "prepared":
            return str(row["status"])
        accepted = receipt["status"] == "accepted"
        seq = chain_hash = None
        if accepted:
            seq = int(receipt["seq"])
            chain_hash = crypto.b64d(receipt["chain_hash"])
            prev = crypto.b64d(receipt["prev_hash"])
            if (
                receipt["amount_received"] != row["amount_received"]
                or chain_next(prev, row, seq) != chain_hash
            ):
                # The peer recorded something else than we sent: never post on that. Keep the
                # hold and keep asking; reconciliation shows the difference to the operators.
                await session.execute(
                    text("UPDATE transfers SET last_error = :e WHERE id = :i"),
                    {"e": "receipt does not match the transfer", "i": row_id},
                )
                log.error("receipt of transfer %s does not match what was sent", row["transfer_id"])
                return "prepared"
        actor = f"system:federation:{peer}"
        await session.execute(
            text("SELECT mc_finish_hold(:t, :post, :actor)"),
            {"t": row["trade_id"], "post": accepted, "actor": actor},
        )
        await _record_outcome(session, row_id, receipt, seq, chain_hash, keep_receipt=True)
        if row["kind"] == "settlement":
            await session.execute(
                text("UPDATE settlements SET status = :s WHERE transfer_id = :t"),
                {"s": "executed" if accepted else "refused", "t": row["transfer_id"]},
            )
        await _finish_forwarded(session, row, accepted, receipt)
        return "accepted" if accepted else "refused"


async def _finish_forwarded(
    session: AsyncSession, out_row: RowMapping, accepted: bool, receipt: dict[str, Any]
) -> None:
    """At a hub: the next hop decided, so the inbound transfer is decided the same way."""
    in_row = (
        (
            await session.execute(
                text(
                    "SELECT t.*, l.peer_code, n.code AS network_code FROM transfers t"
                    " JOIN links l ON l.id = t.link_id JOIN networks n ON n.id = t.network_id"
                    " WHERE t.network_id = :n AND t.transfer_id = :t AND t.direction = 'in'"
                    " AND t.status = 'forwarded' FOR UPDATE OF t"
                ),
                {"n": out_row["network_id"], "t": out_row["transfer_id"]},
            )
        )
        .mappings()
        .one_or_none()
    )
    if in_row is None:
        return
    seq = chain_hash = None
    if accepted:
        seq, chain_hash = await _append_to_chain(
            session, in_row, in_row["peer_code"], in_row["network_code"]
        )
    await _record_outcome(session, in_row["id"], receipt, seq, chain_hash, keep_receipt=False)


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
    with the refusing network's code (named in the detail as refused_by)."""
    accepted = receipt["status"] == "accepted"
    detail = {**(receipt.get("detail") or {}), "refused_by": receipt.get("network")}
    await session.execute(
        text(
            "UPDATE transfers SET status = :s, seq = :seq, chain_hash = :h,"
            " refusal_code = :code, refusal_detail = CAST(:detail AS jsonb),"
            " receipt = CAST(:receipt AS jsonb), resolved_at = clock_timestamp()"
            " WHERE id = :i"
        ),
        {
            "s": "accepted" if accepted else "refused",
            "seq": seq,
            "h": chain_hash,
            "code": None if accepted else receipt.get("code") or "refused",
            "detail": None if accepted else orjson.dumps(detail).decode(),
            "receipt": orjson.dumps(receipt).decode() if keep_receipt else None,
            "i": row_id,
        },
    )


# ---------------------------------------------------------------------------------------------
# The outbox loop
# ---------------------------------------------------------------------------------------------

_CLAIM = text(
    """
    UPDATE transfers t
    SET attempts = t.attempts + 1,
        next_attempt_at = clock_timestamp()
            + make_interval(secs => least(:cap, 0.25 * power(2, least(t.attempts, 20))))
    FROM (SELECT id FROM transfers
          WHERE direction = 'out' AND status = 'prepared' AND next_attempt_at <= clock_timestamp()
          ORDER BY next_attempt_at LIMIT :limit
          FOR UPDATE SKIP LOCKED) AS due
    WHERE t.id = due.id
    RETURNING t.id
    """
)


async def deliver_due(fed: Federation, limit: int = 50) -> int:
    """Claims the transfers due for (re)delivery, with backoff, and sends them concurrently."""
    async with fed.sessionmaker.begin() as session:
        ids = list(
            (
                await session.execute(
                    _CLAIM, {"cap": fed.settings.federation_retry_max_seconds, "limit": limit}
                )
            ).scalars()
        )
    if ids:
        await asyncio.gather(*(deliver(fed, i) for i in ids), return_exceptions=True)
    return len(ids)


async def prune_nonces(fed: Federation) -> None:
    async with fed.sessionmaker.begin() as session:
        await session.execute(
            text(
                "DELETE FROM federation_nonces"
                " WHERE seen_at < now() - make_interval(secs => :window)"
            ),
            {"window": 2 * fed.settings.federation_clock_skew_seconds},
        )


async def run_forever(fed: Federation) -> None:
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


async def hub_receipt(
    session: AsyncSession, network_code: str, out_row_id: int
) -> tuple[uuid.UUID, dict[str, Any]] | None:
    """At a hub, after the next hop decided: the receipt for the inbound side of the transfer."""
    row = (
        (
            await session.execute(
                text(
                    "SELECT i.*, l.peer_code FROM transfers o"
                    " JOIN transfers i ON i.network_id = o.network_id"
                    " AND i.transfer_id = o.transfer_id AND i.direction = 'in'"
                    " JOIN links l ON l.id = i.link_id WHERE o.id = :o"
                ),
                {"o": out_row_id},
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    prev = (
        await _prev_hash(session, row, row["peer_code"], network_code)
        if row["status"] == "accepted"
        else None
    )
    return row["network_id"], receipt_of(row, network_code, prev)
