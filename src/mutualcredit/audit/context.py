"""The why of a write, for the database's history and audit triggers (migrations/sql/who_and_why/).

The who is set once per request by authentication (mutualcredit.actor). The why, and the kind of
a limit change, are set here just before the write they explain; both are local to the
transaction, so they can never leak into another request.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_SET = text(
    "SELECT set_config('mutualcredit.reason', :reason, true),"
    " set_config('mutualcredit.limit_change', :limit_change, true)"
)


async def explain(session: AsyncSession, reason: str | None, limit_change: str = "") -> None:
    await session.execute(_SET, {"reason": reason or "", "limit_change": limit_change})
