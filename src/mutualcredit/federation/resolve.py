"""An operator resolves a transfer whose outcome is unknown: its peer is gone.

A transfer sent over a link waits for the peer's signed receipt, and its hold with it: the
destination decides, before the expiry, and the sender learns it. With a peer gone for good the
receipt never comes. After the transfer's expiry an operator of the sending network may resolve
it, with a reason: `void` releases the hold (the peer is taken not to have booked it: a peer
that first sees it now refuses it as expired), `post` books it (the operator knows the peer
did). The hold is finished by mc_finish_hold, the protocol's own path; the transfer becomes
'resolved', final for the ledger, and the audit log records the actor and the reason. At a hub,
the transfer it received and sent on is decided the same way (refused, code
`operator_resolved`, or accepted into its chain), so the network before it learns the outcome
by the protocol.

The outbox keeps asking the peer, at the longest backoff, for its word. When it comes, it either
agrees (the transfer becomes accepted or refused, as the peer decided) or contradicts the
resolution: the transfer becomes 'disputed', keeps the peer's receipt, and reconciliation lists
it. No value is created or destroyed automatically: the operators settle a dispute between them
(a trade, a reversal, a settlement), on the record.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.audit.context import explain
from mutualcredit.auth.permissions import require_operator
from mutualcredit.auth.service import Principal
from mutualcredit.federation import outbound, protocol, repository
from mutualcredit.federation.errors import (
    TransferNotExpired,
    TransferNotFound,
    TransferNotInFlight,
)
from mutualcredit.federation.links import link_to
from mutualcredit.federation.schemas import TransferResolve
from mutualcredit.federation.trades import transfer_view
from mutualcredit.trades.schemas import TransferView


async def resolve_transfer(
    session: AsyncSession,
    principal: Principal,
    network_id: uuid.UUID,
    peer: str,
    transfer_id: uuid.UUID,
    body: TransferResolve,
) -> TransferView:
    """Resolves a transfer sent over the link to `peer`, in the request's transaction: allowed
    past its expiry, while no final receipt has come. Refused otherwise (transfer_not_expired,
    transfer_not_in_flight; transfer_not_found for none sent over this link)."""
    require_operator(principal)
    link = await link_to(session, network_id, peer)
    await repository.lock_transfer_id(session, network_id, transfer_id)
    found = await repository.find_transfer(session, network_id, transfer_id, "out")
    if found is None or found.link_id != link.id:
        raise TransferNotFound(
            f"No transfer {transfer_id} was sent over the link to {peer}",
            transfer_id=str(transfer_id),
        )
    transfer = await repository.get_transfer_for_update(session, found.id)
    if transfer.status != "prepared":
        raise TransferNotInFlight(
            f"The transfer is {transfer.status}: its outcome is known",
            transfer_status=transfer.status,
        )
    expires_at = transfer.message.expires_at
    if expires_at > datetime.now(UTC):
        raise TransferNotExpired(
            f"{peer} may still decide the transfer until {protocol.iso(expires_at)}",
            expires_at=protocol.iso(expires_at),
        )
    post = body.outcome == "post"
    await explain(session, body.reason)
    if transfer.trade_id is not None:  # None: a settlement in full that sends nothing
        await repository.finish_hold(session, transfer.trade_id, post=post, actor=principal.actor)
    await repository.mark_resolved(
        session, transfer.id, resolution=body.outcome, reason=body.reason, actor=principal.actor
    )
    if transfer.message.kind == "settlement":
        await repository.set_status_of_transfer(
            session, transfer_id, "executed" if post else "refused"
        )
    await outbound.finish_forwarded(
        session,
        transfer,
        post,
        {
            "transfer_id": str(transfer_id),
            "network": transfer.network_code,
            "status": "accepted" if post else "refused",
            "code": "operator_resolved",
            "detail": {"reason": body.reason},
        },
    )
    return transfer_view(await repository.get_transfer(session, transfer.id))
