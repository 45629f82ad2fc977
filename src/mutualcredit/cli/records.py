"""Commands for what the ledger holds: backup and restore, the ledger's checks, the audit
chain's verification, and the OpenAPI document."""

import argparse
import sys
from pathlib import Path

from mutualcredit.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    CommandError,
    DatabaseError,
    require_schema,
    resolve_database,
    run,
    schema_revision,
    where,
)
from mutualcredit.config import Settings


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit import backup

    url, _ = resolve_database(settings)
    revision = run(schema_revision(url))
    if revision is None:
        raise DatabaseError(f"nothing to back up: the database {where(url)} is not migrated")
    target = Path(args.file)
    if target.is_dir():
        raise CommandError(f"{target} is a directory: name the backup file")
    try:
        backup.dump(url, target)
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror}") from exc
    print(f"backed up the database at revision {revision} to {target}")
    secret = settings.data_dir / "secret.key"
    if settings.secret_key is None and secret.exists():
        print(
            f"{secret} seals the networks' signing keys and is not in the backup:"
            " keep a copy of it apart from the backups"
        )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit import backup
    from mutualcredit.migrate import head_revision

    source = Path(args.file)
    if not source.is_file():
        raise CommandError(f"no backup file {source}")
    url, _ = resolve_database(settings)
    run(schema_revision(url))  # reachable, or a clear message
    if not run(backup.is_empty(url)):
        raise CommandError(
            f"the database {where(url)} is not empty: restore into a new data directory"
            " (--data-dir) or an empty database, never over a ledger"
        )
    try:
        backup.restore(url, source)
    except backup.BackupError as exc:
        raise CommandError(str(exc)) from exc
    revision = run(schema_revision(url))
    print(f"restored {source} (schema revision {revision})")
    if revision != head_revision():
        # The checks are written for this version's schema: an older one is migrated first.
        print(
            "its schema is older than this version's: 'mutualcredit migrate' (or serve) brings"
            " it up to date; then 'mutualcredit check' and 'mutualcredit audit verify'"
        )
        return EXIT_OK
    checked = run(checks(url))
    return max(checked, run(audit_verify(url, None, seal=False)))


# -- checks, audit, openapi ---------------------------------------------------------------------


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from mutualcredit.openapi import render

    text = render()
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror}") from exc
    return EXIT_OK


async def checks(url: str) -> int:
    from mutualcredit.db import create_engine
    from mutualcredit.ledger_checks import run_checks

    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            report = await run_checks(conn)
    finally:
        await engine.dispose()
    if report.ok:
        print("all ledger checks passed")
        return EXIT_OK
    for name, rows in report.failures.items():
        print(f"FAILED: {name}: {', '.join(rows)}")
    return EXIT_CHECK_FAILED


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    return run(checks(url))


async def audit_verify(url: str, network: str | None, seal: bool) -> int:
    from sqlalchemy import select

    import mutualcredit.models  # noqa: F401 - every table's model (see _transaction)
    from mutualcredit import jobs
    from mutualcredit.audit import service as audit
    from mutualcredit.db import create_engine, make_sessionmaker
    from mutualcredit.networks.errors import NetworkNotFound
    from mutualcredit.networks.models import Network

    engine = create_engine(url, pool_size=1)
    sessionmaker = make_sessionmaker(engine)
    try:
        if seal:
            await jobs.seal_audit(sessionmaker)
        broken = 0
        async with sessionmaker() as session:
            query = select(Network).order_by(Network.code)
            if network is not None:
                query = query.where(Network.code == network)
            targets = list(await session.scalars(query))
            if network is not None and not targets:
                raise NetworkNotFound(f"no network {network!r}")
            for net in targets:
                result = await audit.verify(session, net.id, net.code)
                if result.ok:
                    print(
                        f"{net.code}: ok, {result.sealed} records, head {result.head_hash}"
                        f" ({result.unsealed} not yet sealed)"
                    )
                else:
                    assert result.first_broken is not None
                    broken += 1
                    print(
                        f"{net.code}: BROKEN at record {result.first_broken.seq}:"
                        f" {result.first_broken.problem}"
                    )
        return EXIT_CHECK_FAILED if broken else EXIT_OK
    finally:
        await engine.dispose()


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    url, _ = resolve_database(settings)
    require_schema(url)
    return run(audit_verify(url, args.network, seal=not args.no_seal))
