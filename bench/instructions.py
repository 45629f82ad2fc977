"""Instructions per trade inside PostgreSQL, schema revision against schema revision.

Timings on these shared machines move by a third from one minute to the next; an instruction
count does not. This seeds one history with the suite's own seeding (bench/run.py: an embedded
PostgreSQL, 10,000 members and the busy accounts, --history trades) at the older revision, then
for each revision: copies the stopped cluster, upgrades the
copy, and runs a single-user backend under callgrind on --small and then --large
mc_create_trade calls (the same trades in the same order for every revision). Instructions per
trade = (I(large) - I(small)) / (large - small), so start-up and warm-up cancel out.

    python bench/instructions.py [--revisions 0001,0002] [--history 100000]

By default it compares the newest migration with the one before it (head's down revision and
head), which is what a change to the ledger's SQL adds: edit the file, write the migration that
freezes it (migrations/sql/README.md), then count. With a single migration it counts that one.

Needs valgrind. Takes about three minutes. The durable commit's fsync is off in the counted
runs (it costs time, not instructions).
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pgserver  # type: ignore[import-untyped]
from alembic.script import ScriptDirectory
from run import seed_accounts, seed_history  # the suite's own seeding (bench/run.py)

from mutualcredit import embedded, migrate

DATABASE = "bench"
MEMBERS = 10_000


def as_owner(command: str, pgdata: Path) -> list[str]:
    """PostgreSQL refuses to run as root; pgserver then owns the data with a user of its own."""
    if os.geteuid() != 0:
        return ["sh", "-c", command]
    owner = pgdata.owner()
    return ["su", owner, "-s", "/bin/sh", "-c", command]


def trades_script(network: uuid.UUID, count: int) -> str:
    """Single-user mode reads statements ended by a semicolon and an empty line (-j)."""
    rng = random.Random(7)
    lines = ["CHECKPOINT;\n\n"]
    for i in range(count):
        p, q = rng.sample(range(MEMBERS), 2)
        lines.append(
            f"SELECT outcome FROM mc_create_trade('{network}', 'counted-{i}', '\\x00'::bytea,"
            f" 'a{p}', 'a{q}', 1, false, NULL, '', NULL, '{{}}', 'bench');\n\n"
        )
    return "".join(lines)


def counted(upgraded: Path, work: Path, network: uuid.UUID, count: int) -> int:
    """Instructions of a single-user backend booking `count` trades on a fresh copy."""
    postgres = Path(pgserver.__file__).parent / "pginstall" / "bin" / "postgres"
    pgdata = work / f"pgdata-{count}"
    subprocess.run(["cp", "-a", str(upgraded), str(pgdata)], check=True)
    script = work / f"trades-{count}.sql"
    script.write_text(trades_script(network, count))
    out = work / f"callgrind-{count}.out"
    log = work / f"backend-{count}.log"
    subprocess.run(
        as_owner(
            f"valgrind --tool=callgrind --callgrind-out-file={out} {postgres} --single -j"
            f" -D {pgdata} -c fsync=off -c autovacuum=off {DATABASE} < {script} > {log} 2>&1",
            pgdata,
        ),
        check=True,
    )
    created = log.read_text().count('outcome = "created"')
    if created != count:
        raise RuntimeError(f"{created} of {count} trades created; see {log}")
    match = re.search(r"^summary: (\d+)", out.read_text(), re.M)
    assert match is not None
    return int(match.group(1))


def latest_two() -> list[str]:
    """The revision before head (if there is one) and head."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    head = scripts.get_revision("head")
    assert head is not None
    parent = head.down_revision
    assert parent is None or isinstance(parent, str), "a merge revision: pass --revisions"
    return [parent, head.revision] if parent else [head.revision]


async def at_revision(seeded: Path, work: Path, revision: str) -> Path:
    """A copy of the stopped seeded cluster (`cp -a`: the owner must stay the data's owner),
    upgraded to `revision` and stopped again; returns its data directory."""
    home = work / f"at-{revision}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    subprocess.run(["cp", "-a", str(seeded / "pgdata"), str(home / "pgdata")], check=True)
    (home / "pgdata" / ".handle_pids.json").unlink(missing_ok=True)
    server, server_url = embedded.start(home, cleanup="stop")
    try:
        await migrate.upgrade(embedded.database_url(server_url, DATABASE), revision)
    finally:
        server.cleanup()
    return home / "pgdata"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--revisions", help="comma-separated, oldest first (default: head's parent and head)"
    )
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=350)
    args = parser.parse_args()
    revisions = args.revisions.split(",") if args.revisions else latest_two()
    work = Path(tempfile.mkdtemp(prefix="mc_instructions_"))
    os.chmod(work, 0o777)  # noqa: S103 (scratch; the data's owner, not root, writes here)
    try:
        seeded = work / "seeded"
        server, server_url = embedded.start(seeded, cleanup="stop")
        try:
            url = await embedded.ensure_database(server_url, DATABASE)
            await migrate.upgrade(url, revisions[0])
            network = await seed_accounts(url, MEMBERS)
            await seed_history(url, network, MEMBERS, args.history)
        finally:
            server.cleanup()
        print(f"seeded {args.history:,} trades at revision {revisions[0]}", flush=True)
        results: dict[str, float] = {}
        for revision in revisions:
            pgdata = await at_revision(seeded, work, revision)
            runs = work / f"runs-{revision}"
            runs.mkdir()
            os.chmod(runs, 0o777)  # noqa: S103 (as above)
            small = counted(pgdata, runs, network, args.small)
            large = counted(pgdata, runs, network, args.large)
            results[revision] = (large - small) / (args.large - args.small)
            print(f"{revision}: {results[revision]:,.0f} instructions per trade", flush=True)
        first = results[revisions[0]]
        for revision, per_trade in results.items():
            print(f"| {revision} | {per_trade:,.0f} | {per_trade / first:.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
