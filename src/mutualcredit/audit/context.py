"""The who and why of a write, for the database's history and audit triggers
(migrations/sql/who_and_why/).

The who is set once per request by authentication (mutualcredit.actor), and by what writes
outside a request with `act_as` (the command line: `cli:<command>`). The why, and the kind of a
limit change, are set here just before the write they explain. All are local to the
transaction, so they can never leak into another request.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_SET = text(
    "SELECT set_config('mutualcredit.reason', :reason, true),"
    " set_config('mutualcredit.limit_change', :limit_change, true)"
)


_ACT_AS = text("SELECT set_config('mutualcredit.actor', :actor, true)")


async def act_as(session: AsyncSession, actor: str) -> None:
    """Names the actor of every write of this transaction from here on, in the audit log and the
    history of limits, where no API key does: call it first in a transaction of the command
    line (`cli:create-network`, ...). Without it, a record names the database user
    (`sql:<user>`), as for a change made by hand."""
    await session.execute(_ACT_AS, {"actor": actor})


async def explain(session: AsyncSession, reason: str | None, limit_change: str = "") -> None:
    await session.execute(_SET, {"reason": reason or "", "limit_change": limit_change})
