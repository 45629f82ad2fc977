from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from mutualcredit.accounts.schemas import AccountCode
from mutualcredit.auth.models import Role
from mutualcredit.schemas import InputModel, OutputModel


class KeyCreate(InputModel):
    role: Literal["member", "operator", "auditor"]
    account: AccountCode | None = Field(
        default=None, description="For a member key: the account it acts for."
    )
    label: Annotated[str, Field(max_length=200)] = ""


class Key(OutputModel):
    key_id: str = Field(description="Public name of the key (the part after 'mc_').")
    role: Role
    network: str | None
    account: str | None
    label: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(Key):
    token: str | None = Field(
        description="The bearer token. Shown once, never stored; null on an idempotent replay."
    )


class Me(OutputModel):
    key_id: str
    role: Role
    network: str | None
    account: str | None
