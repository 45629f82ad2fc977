"""A member's cross-network trade, over the same endpoint as a local one (POST .../trades with
a payee `network/account`): hold, queue, deliver once inline, answer with where it stands."""

from fastapi import Request
from sqlalchemy import text
from starlette.responses import Response

from mutualcredit.auth.service import Principal
from mutualcredit.errors import ProblemError
from mutualcredit.federation import protocol, service
from mutualcredit.federation.protocol import Federation
from mutualcredit.networks import service as networks
from mutualcredit.responses import json_response
from mutualcredit.trades.schemas import Trade, TradeCreate


async def send(
    request: Request,
    principal: Principal,
    network: str,
    key: str,
    body: TradeCreate,
) -> Response:
    """201 and the posted trade when the destination accepted at once; 202 and the pending
    trade while the outcome is not known yet (the outbox keeps delivering: read the trade, or
    retry with the same key, to learn it); 409 transfer_refused when it was refused. A retry
    with the same key answers with where the trade stands now."""
    fed: Federation = request.app.state.federation
    async with fed.sessionmaker() as session:
        try:
            net_id = await networks.network_id(session, principal, network)
            row_id, trade_id = await service.send_trade(fed, session, principal, net_id, key, body)
        except ProblemError as exc:
            if exc.commit:
                await session.commit()
            raise
        await session.commit()
    if row_id is not None:
        await protocol.deliver(fed, row_id)
    async with fed.sessionmaker() as session:
        details = await session.scalar(text("SELECT mc_trade_json(:t)::text"), {"t": trade_id})
        trade = Trade.model_validate_json(details)
        trade.transfer = await service.transfer_of_trade(session, trade_id)
    assert trade.transfer is not None
    if trade.transfer.status == "refused":
        raise service.refusal_problem(trade_id, trade.transfer)
    status = 201 if trade.transfer.status == "accepted" else 202
    return json_response(trade.model_dump(mode="json"), status, replayed=row_id is None)
