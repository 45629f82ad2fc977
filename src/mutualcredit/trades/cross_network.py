"""What the ledger asks of federation, which sits above it.

A trade whose payee is an address in another network (`network/account`, see addresses.py) is
paid across a link, and a cross-network trade (kind federation or settlement) shows where its
transfer stands. The ledger does neither itself and imports nothing of federation: it states
here what it needs, federation implements it (federation/trades.py), and create_app puts the
implementation on `app.state.cross_network`, where the trade routes find it.
"""

import uuid
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from mutualcredit.auth.service import Principal
from mutualcredit.trades.schemas import Trade, TradeCreate, TransferView


@dataclass(frozen=True, slots=True)
class SentTrade:
    """A cross-network trade as it stands after it was sent: `in_flight` until the other
    network decides (the trade is then a hold), `replayed` when its key was used before."""

    trade: Trade
    in_flight: bool
    replayed: bool


class CrossNetwork(Protocol):
    async def send(
        self, principal: Principal, network: str, key: str, data: TradeCreate
    ) -> SentTrade:
        """Holds the amount toward the link, sends the transfer and waits a moment for its
        receipt, in transactions of its own. Raises the refusal, of this network or another."""
        ...

    async def transfer_of_trade(
        self, session: AsyncSession, trade_id: uuid.UUID
    ) -> TransferView | None:
        """The transfer of a cross-network trade, in the request's transaction."""
        ...
