"""Link health in /metrics: every link's figures (repository.health), as gauges labelled by
network and peer, refreshed by the outbox loop. The link API reads the same figures
(links.get_link), at the moment of the request."""

from datetime import UTC, datetime

from mutualcredit.federation import repository
from mutualcredit.federation.context import Federation
from mutualcredit.observability import (
    LINK_DISPUTED,
    LINK_FAILURES,
    LINK_LAST_CONTACT,
    LINK_OLDEST_WAITING,
    LINK_WAITING,
)


async def export_link_health(fed: Federation) -> None:
    async with fed.sessionmaker() as session:
        rows = await repository.all_link_health(session)
    now = datetime.now(UTC)
    for row in rows:
        labels = (row["network"], row["peer"])
        contact = row["last_contact_at"]
        oldest = row["oldest_waiting_at"]
        LINK_LAST_CONTACT.labels(*labels).set(contact.timestamp() if contact else 0)
        LINK_FAILURES.labels(*labels).set(row["consecutive_failures"])
        LINK_WAITING.labels(*labels).set(row["transfers_waiting"])
        LINK_OLDEST_WAITING.labels(*labels).set((now - oldest).total_seconds() if oldest else 0)
        LINK_DISPUTED.labels(*labels).set(row["transfers_disputed"])
