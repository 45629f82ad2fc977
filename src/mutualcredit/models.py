"""Every table's model, imported in one place so that `metadata` is complete (for Alembic)."""

from mutualcredit.accounts.models import Account
from mutualcredit.audit.models import AuditHead, AuditRecord
from mutualcredit.auth.models import ApiKey
from mutualcredit.db import Base
from mutualcredit.federation.models import (
    Checkpoint,
    Link,
    NodeKey,
    PeerKey,
    SeenNonce,
    Settlement,
    Transfer,
)
from mutualcredit.fees.models import FeeCharge, FeeRule, FeeRuleChange, FeeRun
from mutualcredit.idempotency.models import IdempotencyRecord
from mutualcredit.limits.models import LimitChange
from mutualcredit.networks.models import Network
from mutualcredit.requests.models import PayeeApproval, PaymentRequest
from mutualcredit.trades.models import Entry, Trade, TradeRejection
from mutualcredit.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookRedelivery

metadata = Base.metadata

__all__ = [
    "Account",
    "ApiKey",
    "AuditHead",
    "AuditRecord",
    "Checkpoint",
    "Entry",
    "FeeCharge",
    "FeeRule",
    "FeeRuleChange",
    "FeeRun",
    "IdempotencyRecord",
    "LimitChange",
    "Link",
    "Network",
    "NodeKey",
    "PayeeApproval",
    "PaymentRequest",
    "PeerKey",
    "SeenNonce",
    "Settlement",
    "Trade",
    "TradeRejection",
    "Transfer",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookRedelivery",
    "metadata",
]
