"""Every table's model, imported in one place so that `metadata` is complete (for Alembic)."""

from mutualcredit.accounts.models import Account
from mutualcredit.auth.models import ApiKey
from mutualcredit.db import Base
from mutualcredit.idempotency.models import IdempotencyRecord
from mutualcredit.networks.models import Network
from mutualcredit.trades.models import Entry, Trade, TradeRejection

metadata = Base.metadata

__all__ = [
    "Account",
    "ApiKey",
    "Entry",
    "IdempotencyRecord",
    "Network",
    "Trade",
    "TradeRejection",
    "metadata",
]
