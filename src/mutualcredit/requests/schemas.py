import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from mutualcredit.accounts.schemas import AccountCode
from mutualcredit.schemas import Amount, InputModel, Moment, OutputModel

Reason = Annotated[str, Field(min_length=1, max_length=500)]


class RequestCreate(InputModel):
    payer: AccountCode = Field(description="Who is asked to pay.")
    payee: AccountCode = Field(description="Who asks (a member's own account).")
    amount: Amount
    description: Annotated[str, Field(max_length=500)] = ""
    expires_at: Moment | None = Field(
        default=None, description="When the request lapses. Default: 7 days (configurable)."
    )


class RequestReject(InputModel):
    reason: Reason


class RequestCancel(InputModel):
    reason: Reason | None = None


class PaymentRequest(OutputModel):
    id: uuid.UUID
    payer: str
    payee: str
    amount: int
    description: str
    status: Literal["open", "accepted", "rejected", "cancelled", "expired"]
    reason: str | None
    trade_id: uuid.UUID | None = Field(description="The trade that paid it, once accepted.")
    created_by: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None


class ApprovalSet(InputModel):
    max_amount: Amount | None = Field(
        default=None, description="Only requests up to this amount post at once; null: any."
    )


class Approval(OutputModel):
    payer: str
    payee: str
    max_amount: int | None
    created_by: str
    created_at: datetime
