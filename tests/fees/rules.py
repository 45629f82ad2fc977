"""Fee rules set up in SQL, for what the HTTP API refuses on purpose: a periodic rule whose
boundaries are already past (starts_at in the past), so that a test need not wait for one."""

import uuid
from datetime import datetime
from typing import Any

import asyncpg


async def insert_rule(
    db: asyncpg.Connection, network: str, treasury: str, **fields: Any
) -> uuid.UUID:
    """A fee rule of `network` paid into `treasury` (account codes), inserted as the operator
    'tests' with a reason, as the ledger's history trigger insists."""
    columns = {"created_by": "tests", **fields}
    names = ", ".join(columns)
    values = ", ".join(f"${i}" for i in range(3, len(columns) + 3))
    async with db.transaction():
        await db.execute(
            "SELECT set_config('mutualcredit.reason', 'tests', true),"
            " set_config('mutualcredit.actor', 'tests', true)"
        )
        rule_id: uuid.UUID = await db.fetchval(
            f"INSERT INTO fee_rules (network_id, treasury_id, {names})"
            " SELECT n.id, a.id, " + values + " FROM networks n"
            " JOIN accounts a ON a.network_id = n.id AND a.code = $2"
            " WHERE n.code = $1 RETURNING id",
            network,
            treasury,
            *columns.values(),
        )
    return rule_id


async def backdate_accounts(db: asyncpg.Connection, network: str, to: datetime) -> None:
    """Say the network's accounts were opened at `to`, so that a periodic rule whose
    boundaries are past charges them."""
    await db.execute(
        "UPDATE accounts a SET created_at = $2 FROM networks n"
        " WHERE n.id = a.network_id AND n.code = $1",
        network,
        to,
    )


async def charge_periodic(db: asyncpg.Connection, rule_id: uuid.UUID, boundaries: int) -> None:
    """Run the sweeper until the rule's runs for `boundaries` boundaries are finished (the
    service's own sweeper may be running them at the same time: each is made once)."""
    for _ in range(200):
        finished = await db.fetchval(
            "SELECT count(*) FROM fee_runs WHERE rule_id = $1 AND finished_at IS NOT NULL",
            rule_id,
        )
        if finished >= boundaries:
            return
        await db.execute("SELECT mc_charge_fees(1000)")
    raise AssertionError(f"the runs of rule {rule_id} did not finish")
