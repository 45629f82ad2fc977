"""Signed calls between networks: the client that calls a peer, and the check of a peer's call.

crypto.py says how a request and its answer are signed; here a call is made over a link and its
answer verified with the peer's registered keys, and a received call is traced to the link of
the network that signed it.
"""

import logging
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.federation import crypto, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    PeerForbidden,
    PeerReplay,
    PeerSignatureInvalid,
    PeerSignatureMissing,
    PeerSignatureStale,
    PeerUnknown,
    PeerUnreachable,
)
from mutualcredit.federation.repository import LinkRow

log = logging.getLogger("mutualcredit.federation")


@dataclass(frozen=True, slots=True)
class PeerCall:
    """A verified answer of a peer: its status and its JSON object."""

    status: int
    body: dict[str, Any]


async def call_peer(
    fed: Federation,
    sign: crypto.Signer,
    link: LinkRow,
    keys: dict[str, bytes],
    method: str,
    path: str,
    payload: dict[str, Any] | None = None,
    *,
    seconds: float | None = None,
) -> PeerCall:
    """Sends a signed request to the link's peer and checks the signature of its answer.

    Only an answer signed by one of the peer's registered keys is the peer's: it is returned,
    whatever its status, for the caller to read (a refusal's code and detail are the peer's own
    words). Anything else (no connection, an address the egress policy refuses, a timeout, an
    unsigned or wrongly signed answer of any status, a body that is not a JSON object) raises
    PeerUnreachable with one and the same detail: an operator who may point a link at any URL
    must not learn what is listening there (a closed port, a database, a web server). The
    cause is logged for the deployment's own operators.

    Every call is noted in the link's health (note_call): a signed answer, whatever its status,
    is contact with the peer; anything else is a failure, counted until the next contact."""
    try:
        answer = await _call(fed, sign, link, keys, method, path, payload, seconds=seconds)
    except PeerUnreachable:
        await note_call(fed, link, contact=False)
        raise
    await note_call(fed, link, contact=True)
    return answer


async def note_call(fed: Federation, link: LinkRow, *, contact: bool) -> None:
    """Notes a call's outcome in the link's health, in a short transaction of its own: never
    the caller's (a refusal there must not lose it), and never fatal to the call."""
    try:
        async with fed.sessionmaker.begin() as session:
            if contact:
                await repository.note_contact(session, link.id)
            else:
                await repository.note_failure(session, link.id)
    except Exception:
        log.warning("could not note the health of the link to %s", link.peer_code, exc_info=True)


async def _call(
    fed: Federation,
    sign: crypto.Signer,
    link: LinkRow,
    keys: dict[str, bytes],
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    *,
    seconds: float | None,
) -> PeerCall:
    """call_peer's call itself: signed, sent, its answer's signature checked."""
    body = b"" if payload is None else crypto.canonical(payload)
    created = str(int(time.time()))
    nonce = secrets.token_urlsafe(18)
    base = crypto.request_base(
        method, path, sign.network_code, link.peer_code, created, nonce, body
    )
    headers = {
        "MC-From": sign.network_code,
        "MC-To": link.peer_code,
        "MC-Key-Id": sign.key_id,
        "MC-Created": created,
        "MC-Nonce": nonce,
        "MC-Signature": sign.sign(base),
        "Content-Type": "application/json",
    }
    url = link.peer_url.rstrip("/") + path
    unreachable = PeerUnreachable(f"{link.peer_code} gave no answer signed by its key")
    try:
        response = await fed.http.request(
            method,
            url,
            content=body,
            headers=headers,
            timeout=seconds or fed.settings.federation_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        log.warning("call to peer %s failed: %s", link.peer_code, type(exc).__name__)
        raise unreachable from exc
    raw = response.content
    key = keys.get(response.headers.get("MC-Key-Id", ""))
    if key is None or not crypto.verify(
        key,
        response.headers.get("MC-Signature", ""),
        crypto.response_base(nonce, response.status_code, raw),
    ):
        log.warning(
            "peer %s answered %d without a valid signature", link.peer_code, response.status_code
        )
        raise unreachable
    try:
        answer = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        log.warning("peer %s signed an answer that is not a JSON object", link.peer_code)
        raise unreachable
    return PeerCall(status=response.status_code, body=answer)


@dataclass(frozen=True, slots=True)
class PeerContext:
    """An authenticated node-to-node request: who sent it, over which link, to which network,
    signed with which of the sender's keys."""

    network_id: uuid.UUID
    network_code: str
    link: LinkRow
    nonce: str
    key_id: str


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who a node-to-node request says it is from, checked against this network's records:
    everything about its authentication that does not need the body."""

    link: LinkRow
    public_key: bytes
    values: dict[str, str]


def refused() -> PeerUnknown:
    """The one refusal of a request not signed by a key this network trusts for its sender,
    whatever the cause (no such network, no link, a key not registered, revoked or expired, a
    signature that does not verify): the same status, code, title, detail and headers, so that
    a caller cannot learn which networks this one is linked to, or which keys it holds."""
    return PeerUnknown("The request is not signed by a key this network trusts for its sender")


async def identify_peer(
    session: AsyncSession, network_code: str, headers: Mapping[str, str], skew_seconds: float
) -> PeerIdentity:
    """Checks a node-to-node request's headers: signed, fresh, for this network, by a key
    registered for the sending network on this network's link to it and not expired. What
    needs no record of this network's (the headers are there, name this network, are fresh) is
    checked first and answered alike for every caller; what does is answered with refused().
    Run before the body is read (check_headers, by auth.gate) and again, with the signature
    over the body, by authenticate_peer."""
    values = {h: headers.get(h) for h in crypto.SIGNED_HEADERS}
    if any(not v for v in values.values()):
        raise PeerSignatureMissing("Sign node-to-node requests (MC-* headers)")
    sender, receiver = str(values["mc-from"]), str(values["mc-to"])
    if receiver != network_code:
        raise PeerForbidden("MC-To does not name the network of this path")
    try:
        created = int(str(values["mc-created"]))
    except ValueError:
        raise PeerSignatureInvalid("MC-Created must be unix seconds") from None
    if abs(time.time() - created) > skew_seconds:
        raise PeerSignatureStale(
            "The request was signed outside the allowed clock skew", skew_seconds=skew_seconds
        )
    link = await repository.find_link_of(session, network_code, sender)
    public_key = (
        None
        if link is None
        else await repository.get_peer_key(session, link.id, str(values["mc-key-id"]))
    )
    if link is None or public_key is None:
        raise refused()
    return PeerIdentity(link, public_key, {name: str(value) for name, value in values.items()})


async def check_headers(scope: Any, network_code: str, headers: Mapping[str, str]) -> None:
    """identify_peer in a short transaction of its own, for a request whose body is not read
    yet (auth.gate.PeerCheck)."""
    fed: Federation = scope["app"].state.federation
    async with fed.sessionmaker() as session:
        await identify_peer(
            session, network_code, headers, fed.settings.federation_clock_skew_seconds
        )


async def authenticate_peer(
    fed: Federation,
    session: AsyncSession,
    network_code: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
) -> PeerContext:
    """Checks a node-to-node request: signed, fresh, not replayed, by a trusted key of the
    sending network on this network's link to it. Raises the matching problem otherwise."""
    identity = await identify_peer(
        session, network_code, headers, fed.settings.federation_clock_skew_seconds
    )
    link, public_key, values = identity.link, identity.public_key, identity.values
    base = crypto.request_base(
        method,
        path,
        values["mc-from"],
        values["mc-to"],
        values["mc-created"],
        values["mc-nonce"],
        body,
    )
    if not crypto.verify(public_key, values["mc-signature"], base):
        raise refused()
    if not await repository.insert_nonce(session, link.id, values["mc-nonce"], values["mc-from"]):
        raise PeerReplay()
    return PeerContext(
        network_id=link.network_id,
        network_code=network_code,
        link=link,
        nonce=values["mc-nonce"],
        key_id=values["mc-key-id"],
    )
