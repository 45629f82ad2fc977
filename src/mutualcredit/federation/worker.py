"""The loop every worker runs for federation: delivers the outbox (outbound.py), tells peers
this side's suspensions (links.tell_statuses), refreshes the link health gauges (health.py) and
forgets old nonces."""

import asyncio
import logging
import time

from mutualcredit.federation import health, links
from mutualcredit.federation.context import Federation
from mutualcredit.federation.outbound import deliver_due, prune_nonces

log = logging.getLogger("mutualcredit.federation")

# How often the loop tells peers of suspensions and refreshes the link health gauges.
HOUSEKEEPING_SECONDS = 1.0


async def run_forever(fed: Federation) -> None:
    """The outbox loop every worker runs: delivers whatever is due, while anything is; tells
    peers this side's suspensions (links.tell_statuses) and refreshes the link health gauges
    about once a second; forgets old nonces once a minute."""
    last_prune = last_housekeeping = 0.0
    while True:
        try:
            while await deliver_due(fed) > 0:
                pass
            if time.monotonic() - last_housekeeping > HOUSEKEEPING_SECONDS:
                await links.tell_statuses(fed)
                await health.export_link_health(fed)
                last_housekeeping = time.monotonic()
            if time.monotonic() - last_prune > 60:
                await prune_nonces(fed)
                last_prune = time.monotonic()
        except Exception:
            log.exception("federation delivery failed; trying again at the next interval")
        await asyncio.sleep(fed.settings.federation_interval_seconds)
