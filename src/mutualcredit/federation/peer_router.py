"""Node-to-node endpoints: /federation/v1/networks/{network}/...

Every call but the descriptor is signed by the calling network (peers.authenticate_peer), and
every answer to an authenticated call is signed by this one, refusals included: a sender keeps a
receipt it can prove, and a caller can tell its peer's answer from anything else that might
answer at the peer's address (which it reports alike, whatever it was: peers.call_peer)."""

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mutualcredit import jsonbody
from mutualcredit.apidoc import Endpoint, answers
from mutualcredit.db import unit_of_work
from mutualcredit.errors import ProblemError, ValidationProblem
from mutualcredit.federation import crypto, inbound, links, outbound, statements
from mutualcredit.federation.context import Federation
from mutualcredit.federation.errors import (
    CheckpointMismatch,
    LinkLedgerMismatch,
    LinkRateMismatch,
    PeerForbidden,
    PeerKeyConflict,
    PeerKeyProofInvalid,
    PeerKeyRetired,
    PeerReplay,
    PeerSignatureInvalid,
    PeerSignatureMissing,
    PeerSignatureStale,
    PeerUnknown,
    TransferConflict,
)
from mutualcredit.federation.keys import descriptor as network_descriptor
from mutualcredit.federation.keys import signer
from mutualcredit.federation.peers import PeerContext, authenticate_peer
from mutualcredit.federation.schemas import (
    KeyNotice,
    LinkConfirm,
    LinkStatusNotice,
    TransferMessage,
)
from mutualcredit.jsonbody import StrictJSONRoute
from mutualcredit.networks.errors import NetworkNotFound

log = logging.getLogger("mutualcredit.federation")

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/federation/v1/networks/{network}",
    tags=["federation (node to node)"],
)

# What each header of a signed request says (crypto.py: how the signature base is built).
SIGNATURE_HEADERS: dict[str, str] = {
    "mc-from": "The calling network's code.",
    "mc-to": "This network's code (the path's `{network}`).",
    "mc-key-id": "The id of the caller's signing key, registered on this side of the link.",
    "mc-created": "When the request was signed, in unix seconds; refused beyond the allowed "
    "clock skew.",
    "mc-nonce": "A random value, never sent twice: a replay is refused.",
    "mc-signature": "Base64url Ed25519 signature over the method, path, both network codes, "
    "`MC-Created`, `MC-Nonce` and the body's SHA-256. The answer is signed by this network "
    "(`MC-Key-Id`, `MC-Signature` over the nonce, the status and the body's SHA-256).",
}
SIGNATURE_PROBLEMS = (
    PeerSignatureMissing,
    PeerUnknown,
    PeerSignatureInvalid,
    PeerSignatureStale,
    PeerReplay,
    PeerForbidden,
)


def signed(*problems: type[ProblemError]) -> Callable[[Endpoint], Endpoint]:
    """A node-to-node endpoint: signed by the calling network, not authenticated by a key."""
    return answers(
        *problems,
        signed={name.title(): SIGNATURE_HEADERS[name] for name in crypto.SIGNED_HEADERS},
        signature_problems=SIGNATURE_PROBLEMS,
    )


def _fed(request: Request) -> Federation:
    fed: Federation = request.app.state.federation
    return fed


async def _signed(
    fed: Federation,
    network_id: uuid.UUID,
    nonce: str,
    status: int,
    body: dict[str, Any],
    *,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    content = orjson.dumps(body)
    async with fed.sessionmaker.begin() as session:
        sign = await signer(fed, session, network_id)
    return Response(
        content=content,
        status_code=status,
        media_type=media_type,
        headers={
            **(headers or {}),
            "MC-Key-Id": sign.key_id,
            "MC-Signature": sign.sign(crypto.response_base(nonce, status, content)),
        },
    )


Handler = Callable[[AsyncSession, PeerContext, bytes], Awaitable[tuple[int, dict[str, Any]]]]


async def _serve(request: Request, network: str, handle: Handler) -> Response:
    """Authenticates, runs the handler in one transaction (committed before answering), and
    signs the answer."""
    fed = _fed(request)
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ctx: PeerContext | None = None
    try:
        async with unit_of_work(fed.sessionmaker) as session:
            ctx = await authenticate_peer(
                fed, session, network, request.method, path, request.headers, body
            )
            status, answer = await handle(session, ctx, body)
    except ProblemError as exc:
        if ctx is None:
            raise  # not authenticated: answered unsigned, as to anyone
        return await _signed(
            fed,
            ctx.network_id,
            ctx.nonce,
            exc.status,
            exc.to_problem(request.url.path),
            media_type="application/problem+json",
            headers=exc.headers,
        )
    return await _signed(fed, ctx.network_id, ctx.nonce, status, answer)


Model = TypeVar("Model", bound=BaseModel)


def _json(body: bytes) -> dict[str, Any]:
    """A signed body, read as strictly as every other (jsonbody): no member twice, no NaN."""
    try:
        value = jsonbody.loads(body)
    except ValueError as exc:
        raise ValidationProblem(f"The body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationProblem("The body must be a JSON object")
    return value


def _parse(model: type[Model], body: bytes, what: str) -> Model:
    try:
        return model.model_validate(_json(body))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValidationProblem(f"Not {what}: {where}: {error['msg']}") from None


@router.get("/descriptor", summary="The network's public federation descriptor (no signature)")
@answers(NetworkNotFound)
async def get_descriptor(network: str, request: Request) -> dict[str, Any]:
    """Anyone: no key, no signature. The network's federation descriptor (address, unit, public
    URL, signing keys), which a peer's operator reads to link with it. Read only. A network
    whose descriptor is not public, or that has no signing key yet, answers 404
    `network_not_found` exactly as a network that does not exist; its operators read it with
    `GET /v1/networks/{network}/federation/identity`."""
    fed = _fed(request)
    async with fed.sessionmaker() as session:
        return await network_descriptor(fed, session, network, public=True)


@router.post("/link", summary="Confirm a link and its rate")
@signed(LinkRateMismatch)
async def confirm_link(network: str, request: Request) -> Response:
    """A linked network, signed. Confirms that both sides hold the same rate (inverted) for the
    link; the answer is signed by this network. Refused with 409 `link_rate_mismatch`
    otherwise."""

    async def handle(
        session: AsyncSession, ctx: PeerContext, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        return 200, await links.confirm_link(session, ctx, _parse(LinkConfirm, body, "a rate"))

    return await _serve(request, network, handle)


@router.post("/link/status", summary="Learn the caller's own side's status of the link")
@signed()
async def receive_link_status(network: str, request: Request) -> Response:
    """A linked network, signed. Tells this network that the caller suspended its side of the
    link, or resumed it: recorded as the link's `peer_status`, and while it is suspended this
    network sends nothing new over the link."""

    async def handle(
        session: AsyncSession, ctx: PeerContext, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        notice = _parse(LinkStatusNotice, body, "a link status")
        return 200, await links.receive_status(session, ctx, notice)

    return await _serve(request, network, handle)


@router.post(
    "/transfers",
    summary="Deliver a transfer, or ask again for its outcome (idempotent by transfer id)",
    responses={202: {"description": "Not decided yet: the receipt of a pending transfer."}},
)
@signed(TransferConflict)
async def deliver_transfer(network: str, request: Request) -> Response:
    """A linked network, signed. Delivers a transfer, or asks again for its outcome: delivery is
    idempotent by transfer id, and the answer is the signed receipt (200 once decided, accepted
    or refused; 202 while the next network on the route has not decided). Refused with 409
    `transfer_conflict` when the transfer id was delivered before with other content."""
    fed = _fed(request)
    forward: list[int] = []

    async def handle(
        session: AsyncSession, ctx: PeerContext, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        msg = _parse(TransferMessage, body, "a transfer")
        receipt, out_row = await inbound.receive(fed, session, ctx, msg)
        if out_row is not None:
            forward.append(out_row)
        return (202 if receipt["status"] == "pending" else 200), receipt

    response = await _serve(request, network, handle)
    if not forward:
        return response
    # A hub: try the next hop now, within this call, so the sender usually learns the outcome
    # in one round trip; if it cannot, the outbox keeps trying and the sender asks again.
    status = await outbound.deliver(
        fed, forward[0], seconds=fed.settings.federation_timeout_seconds / 2
    )
    if status == "prepared":
        return response
    async with fed.sessionmaker.begin() as session:
        ctx_row = await outbound.hub_receipt(session, forward[0])
    if ctx_row is None:
        return response
    network_id, receipt = ctx_row
    nonce = request.headers.get("mc-nonce", "")
    return await _signed(fed, network_id, nonce, 200, receipt)


@router.get("/statement", summary="This side's statement of the caller's link")
@signed()
async def get_peer_statement(network: str, request: Request) -> Response:
    """A linked network, signed. This side's statement of the caller's link, signed, for the
    caller's reconciliation: its chains and figures, and its ledger against its records."""

    async def handle(
        session: AsyncSession, ctx: PeerContext, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        return 200, await statements.statement(session, ctx.link)

    return await _serve(request, network, handle)


@router.post("/checkpoints", summary="Countersign a checkpoint")
@signed(CheckpointMismatch, LinkLedgerMismatch)
async def countersign_checkpoint(network: str, request: Request) -> Response:
    """A linked network, signed. Countersigns a checkpoint of the link when this side's records
    agree. Refused with 409 `link_ledger_mismatch` while this side's ledger differs from its
    records of the link (`side` is this network), and 409 `checkpoint_mismatch` when the records
    differ."""
    fed = _fed(request)

    async def handle(
        session: AsyncSession, ctx: PeerContext, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        return await statements.countersign_checkpoint(fed, session, ctx, _json(body))

    return await _serve(request, network, handle)


@router.post(
    "/keys",
    summary="A rotation: register the caller's new key, retire the one that signed the call",
)
@signed(PeerKeyConflict, PeerKeyRetired, PeerKeyProofInvalid)
async def register_peer_key(network: str, request: Request) -> Response:
    """A linked network, signed with its current key (the one it retires). Registers the
    caller's new signing key, whose signature of the rotation is in the body (`proof`, over
    the lines of `crypto.key_base`), and stops accepting the key that signed the call at
    `retire_at` (unix seconds; at once when `compromised`; never later than a week from now).
    Refused with 422 `peer_key_proof_invalid` when the new key did not sign, 409
    `peer_key_conflict` when its id is registered with another public key, 409
    `peer_key_retired` when it names a key retired before or is signed by a key an earlier
    rotation retired (in its grace period an old key signs requests, but no rotation)."""

    async def handle(
        session: AsyncSession, ctx: PeerContext, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        notice = _parse(KeyNotice, body, "a rotation notice")
        return 200, await links.receive_key(session, ctx, notice)

    return await _serve(request, network, handle)
