"""Links between networks: proposing one, agreeing it with the peer, changing, suspending and
resuming it, and the keys of the peer it trusts.

A link is `proposed` until both sides have confirmed to each other, signed, that they hold the
same rate (each the inverse of the other's); then `active`:

    proposed ──agree (both sides)──► active ──suspend──► suspended
       ▲                               │  ◄────resume─────┘  (only if agreed)
       └─────────── a new rate ────────┘

A new rate also takes the agreement from a suspended link (it stays suspended, and is agreed
again before it resumes); an operator may suspend a proposed link too.

Each side's status is its own decision, and the peer is told (tell_statuses, from the outbox
loop, signed, until it acknowledges: `told_status`): the peer keeps it as its link's
`peer_status`, and sends nothing new over a link the other side suspended.
"""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit import egress
from mutualcredit.amounts import MAX_AMOUNT
from mutualcredit.audit.context import act_as, explain
from mutualcredit.auth.permissions import require_operator
from mutualcredit.auth.service import Principal
from mutualcredit.errors import ValidationProblem
from mutualcredit.federation import crypto, repository
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    LinkExists,
    LinkNotActive,
    LinkNotFound,
    LinkRateMismatch,
    PeerKeyConflict,
    PeerKeyNotFound,
    PeerKeyProofInvalid,
    PeerKeyRetired,
    PeerUnreachable,
    RouteTaken,
)
from mutualcredit.federation.keys import ensure_key, signer
from mutualcredit.federation.peers import PeerContext, call_peer
from mutualcredit.federation.protocol import FED
from mutualcredit.federation.repository import LinkHealthRow, LinkOverview, LinkRow
from mutualcredit.federation.schemas import (
    GRACE_MAX_SECONDS,
    KeyNotice,
    LinkConfirm,
    LinkCreate,
    LinkHealthView,
    LinkStatusNotice,
    LinkUpdate,
    LinkView,
    PeerKeyCreate,
)

log = logging.getLogger("mutualcredit.federation")

LINK_PREFIX = "link."
SETTLEMENT_PREFIX = "settlement."


async def link_to(session: AsyncSession, network_id: uuid.UUID, peer: str) -> LinkRow:
    """The network's link to `peer`; link_not_found if it has none."""
    link = await repository.get_link(session, network_id, peer)
    if link is None:
        raise LinkNotFound(f"No link to {peer!r}", peer=peer)
    return link


def _view(overview: LinkOverview) -> LinkView:
    link = overview.link
    return LinkView(
        peer=link.peer_code,
        peer_url=link.peer_url,
        status=link.status,
        status_reason=link.status_reason,
        account=link.account_code,
        settlement_account=link.settlement_account_code,
        rate={"num": link.rate_num, "den": link.rate_den, "version": link.rate_version},
        credit_limit=overview.credit_limit,
        balance_max=overview.balance_max,
        balance=overview.balance,
        pending_debits=overview.pending_debits,
        pending_credits=overview.pending_credits,
        default_route=link.default_route,
        routes=overview.routes,
        peer_keys=overview.peer_keys,
        agreed_at=link.agreed_at,
        peer_status=link.peer_status,
        peer_told=_peer_told(link),
        health=_health(overview.health),
        created_at=link.created_at,
    )


def _peer_told(link: LinkRow) -> bool:
    """Whether the peer knows what it needs of this side's status: a suspension, or the resume
    after one (links_to_tell has the same rule)."""
    needs_telling = link.status == "suspended" or link.told_status == "suspended"
    return not needs_telling or link.told_status == link.status


def _health(health: LinkHealthRow) -> LinkHealthView:
    oldest = health.oldest_waiting_at
    return LinkHealthView(
        last_contact_at=health.last_contact_at,
        consecutive_failures=health.consecutive_failures,
        last_failure_at=health.last_failure_at,
        transfers_waiting=health.transfers_waiting,
        oldest_waiting_at=oldest,
        oldest_waiting_seconds=(
            None if oldest is None else round((datetime.now(UTC) - oldest).total_seconds(), 3)
        ),
        transfers_disputed=health.transfers_disputed,
    )


async def list_links(session: AsyncSession, network_id: uuid.UUID) -> list[LinkView]:
    return [_view(o) for o in await repository.link_overviews(session, network_id, None)]


async def get_link(session: AsyncSession, network_id: uuid.UUID, peer: str) -> LinkView:
    found = await repository.link_overviews(session, network_id, peer)
    if not found:
        raise LinkNotFound(f"No link to {peer!r}", peer=peer)
    return _view(found[0])


async def create_link(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    data: LinkCreate,
) -> LinkView:
    require_operator(principal)
    if data.peer == await repository.network_code(session, network_id):
        raise ValidationProblem("peer: a network cannot link to itself")
    _check_peer_url(fed, str(data.peer_url))
    await ensure_key(fed, session, network_id)
    await explain(session, data.reason or f"link to {data.peer}")
    try:
        async with session.begin_nested():
            account_id = await repository.insert_account(
                session,
                network_id,
                code=LINK_PREFIX + data.peer,
                name=f"Network {data.peer}",
                kind="link",
                credit_limit=data.credit_limit,
                balance_max=data.balance_max,
            )
            settlement_id = await repository.insert_account(
                session,
                network_id,
                code=SETTLEMENT_PREFIX + data.peer,
                name=f"Settlements with {data.peer}",
                kind="settlement",
                credit_limit=MAX_AMOUNT,
                balance_max=None,
            )
            link_id = await repository.insert_link(
                session,
                network_id,
                peer=data.peer,
                peer_url=str(data.peer_url).rstrip("/"),
                account_id=account_id,
                settlement_account_id=settlement_id,
                rate_num=data.rate.num,
                rate_den=data.rate.den,
                default_route=data.default_route,
            )
            await _trust(session, link_id, data.peer_key)
    except IntegrityError as exc:
        raise LinkExists(
            f"A link to {data.peer!r} exists, or account {LINK_PREFIX}{data.peer} or "
            f"{SETTLEMENT_PREFIX}{data.peer} is taken",
            peer=data.peer,
        ) from exc
    return await get_link(session, network_id, data.peer)


async def _trust(session: AsyncSession, link_id: uuid.UUID, key: PeerKeyCreate) -> None:
    outcome = await repository.upsert_peer_key(
        session, link_id, key.key_id, crypto.b64d(key.public_key)
    )
    if outcome == "conflict":
        raise PeerKeyConflict(
            f"Key {key.key_id!r} is registered with another public key", key_id=key.key_id
        )
    if outcome == "retired":
        raise PeerKeyRetired(
            f"Key {key.key_id!r} was retired by the peer's rotation: it is not trusted again",
            key_id=key.key_id,
        )


async def add_peer_key(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    key: PeerKeyCreate,
) -> LinkView:
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    await _trust(session, link.id, key)
    return await get_link(session, network_id, peer)


async def revoke_peer_key(
    session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str, key_id: str
) -> LinkView:
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    if not await repository.revoke_peer_key(session, link.id, key_id):
        raise PeerKeyNotFound(f"The link to {peer} has no key {key_id!r}", key_id=key_id)
    return await get_link(session, network_id, peer)


async def receive_key(session: AsyncSession, ctx: PeerContext, notice: KeyNotice) -> dict[str, Any]:
    """The peer's side of keys.rotate_key: a notice signed with a key this side trusts (ctx),
    carrying the new key's own signature of the rotation, from a key not itself rotated away
    (in its grace period, an old key signs no rotation). This side trusts the new key and
    stops accepting the old one at the notice's `retire_at` (no later than the longest grace
    a rotation may give, by this side's clock), or at once when the old key is compromised."""
    statement = crypto.key_base(
        ctx.link.peer_code,
        ctx.network_code,
        ctx.key_id,
        notice.key_id,
        notice.public_key,
        str(notice.retire_at),
        notice.compromised,
    )
    if not crypto.verify(crypto.b64d(notice.public_key), notice.proof, statement):
        raise PeerKeyProofInvalid("proof: not the new key's signature of this rotation")
    if notice.key_id == ctx.key_id:
        raise ValidationProblem("key_id: a key does not replace itself")
    if await repository.peer_key_retiring(session, ctx.link.id, ctx.key_id):
        # Within its grace period an old key still signs requests, but no rotation: whoever
        # else holds it could otherwise announce a key of their own until it expires.
        raise PeerKeyRetired(
            f"Key {ctx.key_id!r}, which signed this notice, was retired by an earlier rotation:"
            " only the current key announces the next",
            key_id=ctx.key_id,
        )
    await _trust(session, ctx.link.id, notice)
    grace = 0.0 if notice.compromised else notice.retire_at - time.time()
    grace = min(max(grace, 0.0), GRACE_MAX_SECONDS)
    await repository.retire_peer_key(session, ctx.link.id, ctx.key_id, grace)
    return {"status": "registered", "key_id": notice.key_id, "retired_key_id": ctx.key_id}


async def agree_link(
    fed: Federation, session: AsyncSession, principal: Principal, network_id: uuid.UUID, peer: str
) -> LinkView:
    """Confirms the link with the peer (signed both ways). Both sides must hold the same rate,
    inverted; then both mark the link active (a suspended side stays suspended)."""
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    sign = await signer(fed, session, network_id)
    keys = await repository.peer_keys(session, link.id)
    rate = {"num": link.rate_num, "den": link.rate_den, "version": link.rate_version}
    answer = await call_peer(fed, sign, link, keys, "POST", f"{FED}/{peer}/link", {"rate": rate})
    if answer.status >= 400:
        if answer.body.get("code") == "link_rate_mismatch":
            raise LinkRateMismatch(answer.body.get("detail"), peer=peer)
        raise PeerUnreachable(
            f"{peer} refused: {answer.body.get('detail')}", peer_code=answer.body.get("code")
        )
    agreed = (answer.body.get("rate") or {}).get("version")
    if not isinstance(agreed, int) or agreed < link.rate_version:
        raise PeerUnreachable(f"{peer} answered without the agreed rate version")
    await _mark_agreed(session, link, agreed)
    return await get_link(session, network_id, peer)


async def _mark_agreed(session: AsyncSession, link: LinkRow, version: int) -> None:
    """Both sides end an agreement at the same rate version: the larger of the two proposals'
    (each side counts its own proposals), so a version never goes back on either side. Only
    the rate that was compared is marked agreed: if an operator changed it meanwhile, the
    agreement is refused and must be made again."""
    if not await repository.mark_agreed(session, link, version):
        raise LinkRateMismatch("The link's rate changed while it was being agreed: agree again")


async def confirm_link(
    session: AsyncSession, ctx: PeerContext, data: LinkConfirm
) -> dict[str, Any]:
    """The peer's side of agree_link."""
    link = ctx.link
    theirs = Fraction(data.rate.num, data.rate.den)
    version = data.rate.version
    if theirs != Fraction(link.rate_den, link.rate_num):
        raise LinkRateMismatch(
            f"{ctx.network_code} holds {link.rate_num}/{link.rate_den} (version "
            f"{link.rate_version}); the inverse of it is expected"
        )
    agreed = max(version, link.rate_version)
    await _mark_agreed(session, link, agreed)
    return {
        "status": "agreed",
        "network": ctx.network_code,
        "rate": {"num": link.rate_num, "den": link.rate_den, "version": agreed},
    }


def _check_peer_url(fed: Federation, url: str) -> None:
    if egress.refused_at_sight(url, allow_private=fed.settings.outbound_allow_private):
        raise ValidationProblem(
            "peer_url: not an address this service may call (loopback, private, link-local or"
            " reserved; see MUTUALCREDIT_OUTBOUND_ALLOW_PRIVATE)"
        )


async def update_link(
    fed: Federation,
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    data: LinkUpdate,
) -> LinkView:
    """Changes a link's URL, routing (default route, route table) or rate. A new rate takes the
    link out of use until both sides agree it again (transfers in flight keep the rate they
    were sent at; one that arrives after the change is refused with rate_mismatch or
    link_not_active, and its hold is voided). A route table is replaced whole, at once."""
    require_operator(principal)
    if (data.peer_url, data.rate, data.default_route, data.routes) == (None, None, None, None):
        raise ValidationProblem("Nothing to change: give peer_url, rate, default_route or routes")
    if data.peer_url is not None:
        _check_peer_url(fed, str(data.peer_url))
    link = await repository.get_link_for_update(session, network_id, peer)
    if link is None:
        raise LinkNotFound(f"No link to {peer!r}", peer=peer)
    await explain(session, data.reason)
    if data.routes is not None:
        await _set_routes(session, link, data.routes)
    new_rate = data.rate is not None and Fraction(data.rate.num, data.rate.den) != Fraction(
        link.rate_num, link.rate_den
    )
    await repository.update_link(
        session,
        link.id,
        peer_url=str(data.peer_url).rstrip("/") if data.peer_url is not None else None,
        default_route=data.default_route,
        new_rate=(data.rate.num, data.rate.den) if new_rate and data.rate is not None else None,
    )
    return await get_link(session, network_id, peer)


async def _set_routes(session: AsyncSession, link: LinkRow, routes: list[str]) -> None:
    """The link's route table becomes `routes`: network codes, neither this network nor the
    peer (its direct link routes it), each once, and none another link of this network routes
    (route_taken; the unique key on link_routes decides a race the same way)."""
    if link.network_code in routes or link.peer_code in routes:
        raise ValidationProblem(
            "routes: name the networks reached through the peer, not this network nor the peer"
        )
    if len(set(routes)) != len(routes):
        raise ValidationProblem("routes: a network is named twice")
    taken = await repository.routes_taken(session, link.network_id, routes, link.id)
    if not taken:
        try:
            async with session.begin_nested():
                await repository.set_routes(session, link.network_id, link.id, routes)
        except IntegrityError:
            taken = await repository.routes_taken(session, link.network_id, routes, link.id)
            if not taken:
                raise
    if taken:
        network, peer = min(taken.items())
        raise RouteTaken(
            f"The link to {peer} routes {network!r} already", network=network, peer=peer
        )


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
    link = await link_to(session, network_id, peer)
    if status == "active" and link.agreed_at is None:
        raise LinkNotActive("Both sides have not agreed the link's current rate: agree it first")
    await explain(session, reason)
    await repository.set_link_status(session, link.id, status, reason)
    return await get_link(session, network_id, peer)


async def receive_status(
    session: AsyncSession, ctx: PeerContext, notice: LinkStatusNotice
) -> dict[str, Any]:
    """The peer tells this side its own side's status (it suspended the link, or resumed it):
    recorded as `peer_status`, with the peer as actor and its reason. While the peer's side is
    suspended this side sends nothing new over the link (trades.send_trade, inbound._forward)."""
    await act_as(session, f"peer:{ctx.link.peer_code}")
    await explain(session, notice.reason)
    await repository.set_peer_status(session, ctx.link.id, notice.status)
    return {"network": ctx.network_code, "peer_status": notice.status}


async def tell_statuses(fed: Federation) -> None:
    """Tells each peer this side's suspension of its link, or the resume after one, until the
    peer acknowledges it (a signed 200); run by the outbox loop, so a peer that is down learns
    it when it is back. The suspension takes effect here at once either way."""
    async with fed.sessionmaker() as session:
        pending = await repository.links_to_tell(session, fed.settings.federation_retry_max_seconds)
    await asyncio.gather(*(_tell_status_logged(fed, link) for link in pending))


async def _tell_status_logged(fed: Federation, link: LinkRow) -> None:
    try:
        await _tell_status(fed, link)
    except PeerUnreachable:
        pass  # noted in the link's health; told again after a backoff
    except Exception:
        log.exception("telling %s the link's status failed", link.peer_code)


async def _tell_status(fed: Federation, link: LinkRow) -> None:
    async with fed.sessionmaker() as session:
        sign = await signer(fed, session, link.network_id)
        keys = await repository.peer_keys(session, link.id)
    answer = await call_peer(
        fed,
        sign,
        link,
        keys,
        "POST",
        f"{FED}/{link.peer_code}/link/status",
        {"status": link.status, "reason": link.status_reason},
    )
    if answer.status != 200:
        log.warning("%s refused the link's status: %s", link.peer_code, answer.body.get("code"))
        return
    async with fed.sessionmaker.begin() as session:
        await act_as(session, "system:federation")
        await repository.mark_told(session, link.id, link.status)
