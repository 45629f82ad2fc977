import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt

from mutualcredit.schemas import InputModel, Limit, OutputModel

NetworkCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$",
        description="Lowercase letters, digits and inner hyphens, 1-32 characters. Fixed forever.",
        examples=["riverside"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
UnitText = Annotated[str, Field(min_length=1, max_length=40)]
DESCRIPTOR_PUBLIC = (
    "Whether anyone may read the network's federation descriptor; when not, it answers 404 as an "
    "unknown network would, and only the network's operators read it (.../federation/identity)."
)


class NetworkCreate(InputModel):
    code: NetworkCode
    name: Name
    unit_name: UnitText = Field(examples=["hour"])
    unit_symbol: UnitText = Field(examples=["h"])
    scale: Annotated[StrictInt, Field(ge=0, le=9)] = Field(
        description="Decimal places of the minor unit (2: amounts are hundredths). Fixed forever."
    )
    default_credit_limit: Limit = 0
    default_balance_max: Limit | None = None
    descriptor_public: StrictBool = Field(default=True, description=DESCRIPTOR_PUBLIC)


class NetworkUpdate(InputModel):
    """Changes of names, of the defaults for accounts opened from now on, and of whether the
    federation descriptor is public."""

    name: Name | None = None
    unit_name: UnitText | None = None
    unit_symbol: UnitText | None = None
    default_credit_limit: Limit | None = None
    default_balance_max: Limit | None = Field(
        default=None, description="Send null explicitly to remove the default upper limit."
    )
    descriptor_public: StrictBool | None = Field(default=None, description=DESCRIPTOR_PUBLIC)
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        default=None,
        description="Required when the default limits or descriptor_public change; kept in the "
        "limit history and the audit log.",
    )


class Network(OutputModel):
    id: uuid.UUID
    code: str
    name: str
    unit_name: str
    unit_symbol: str
    scale: int
    default_credit_limit: int
    default_balance_max: int | None
    descriptor_public: bool
    created_at: datetime
