from datetime import datetime
from typing import Any

from pydantic import Field

from mutualcredit.schemas import OutputModel


class AuditEntry(OutputModel):
    id: int
    seq: int | None = Field(description="Position in the network's chain; null until sealed.")
    occurred_at: datetime
    actor: str = Field(
        description="role:key_id (an API key), peer:<network> (a peer's signed request),"
        " system:<job>, or sql:<database user> (a change made outside the service)."
    )
    action: str = Field(examples=["trade.created", "account.limits_changed", "api_key.revoked"])
    subject_type: str
    subject_id: str
    reason: str | None
    before: Any | None = Field(description="The changed fields before (null on creation).")
    after: Any | None = Field(description="The changed fields after.")
    hash: str | None = Field(description="Hex SHA-256 of this record in the chain.")


class BrokenLink(OutputModel):
    seq: int
    problem: str


class Verification(OutputModel):
    network: str
    ok: bool
    sealed: int = Field(description="Records checked in the chain.")
    unsealed: int = Field(description="Records not yet chained (sealed within seconds).")
    head_seq: int
    head_hash: str | None = Field(
        description="Hex hash of the last record: record it elsewhere to anchor the chain."
    )
    first_broken: BrokenLink | None
