"""The `mutualcredit` command: serve, migrate, bootstrap networks and keys, back up, audit.

A person or a script runs it, so it never answers with a traceback: an error is one line on
stderr, `mutualcredit: <what went wrong>`, and the exit status says which kind of error it was
(EXIT_STATUSES below; `mutualcredit --help` lists them).

Each command that writes does so in one transaction that names the command as the actor of its
audit records (`cli:create-network`), as authentication names a key for a request.
"""

import argparse
import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from mutualcredit.cli.common import (
    EXIT_BROKEN_PIPE,
    EXIT_BUG,
    EXIT_DATABASE,
    EXIT_INTERRUPTED,
    EXIT_STATUSES,
    EXIT_USAGE,
    OPTION_OF_FIELD,
    CommandError,
    first_line,
)
from mutualcredit.cli.keys import cmd_create_key, cmd_create_network, cmd_list_keys, cmd_revoke_key
from mutualcredit.cli.records import cmd_audit, cmd_backup, cmd_check, cmd_openapi, cmd_restore
from mutualcredit.cli.serving import cmd_deliver, cmd_migrate, cmd_serve
from mutualcredit.config import Settings
from mutualcredit.errors import ProblemError, database_unreachable
from mutualcredit.observability import configure_logging

log = logging.getLogger("mutualcredit.cli")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error, with where to find the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=34)


def _global_options() -> _Parser:
    """Options every command takes, before or after its name. Their defaults are SUPPRESS so
    that a subcommand's parser, which parses last, never resets a value given before it."""
    options = _Parser(add_help=False)
    options.add_argument(
        "--database-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the URL of the PostgreSQL database to use (default: $MUTUALCREDIT_DATABASE_URL;"
        " unset: the embedded PostgreSQL in --data-dir)",
    )
    options.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=argparse.SUPPRESS,
        help="where the embedded PostgreSQL keeps its data, when no database URL is set"
        " (default: $MUTUALCREDIT_DATA_DIR, else ~/.local/share/mutualcredit)",
    )
    return options


def _whole_number(text: str) -> int:
    """Digits, with a minus sign perhaps, and nothing else: no spaces, underscores, plus signs
    or other scripts' digits, which int() would take."""
    if not re.fullmatch(r"-?[0-9]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _whole_number(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value

    return parse


def _port(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(
        prog="mutualcredit",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXIT_STATUSES,
        formatter_class=_formatter,
        parents=[common],
    )
    try:
        version = importlib.metadata.version("mutualcredit")
    except importlib.metadata.PackageNotFoundError:
        from mutualcredit import __version__ as version
    parser.add_argument(
        "--version", action="version", version=f"mutualcredit {version}", help="show the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            formatter_class=_formatter,
            parents=[common],
        )
        p.set_defaults(func=func)
        return p

    serve = command("serve", "apply the migrations, then serve HTTP", cmd_serve)
    serve.add_argument(
        "--host",
        help="the address to listen on (default: $MUTUALCREDIT_HOST, else 127.0.0.1)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        help="the port to listen on (default: $MUTUALCREDIT_PORT, else 8000)",
    )
    serve.add_argument(
        "--workers",
        type=_int_at_least(1),
        metavar="N",
        help="worker processes (default: $MUTUALCREDIT_WORKERS, else 1)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply the migrations first (default: apply them)",
    )
    serve.add_argument(
        "--no-demo",
        action="store_true",
        help="on the first start of an embedded database, do not create the network 'demo'"
        " and its operator key (default: create them)",
    )

    deliver = command(
        "deliver",
        "deliver webhooks until stopped (what 'serve' runs beside its workers; run it on its"
        " own where MUTUALCREDIT_WEBHOOK_DELIVERY=off)",
        cmd_deliver,
    )
    deliver.add_argument(
        "--parent",
        type=_int_at_least(1),
        metavar="PID",
        help="stop once the process PID has gone ('serve' gives its own to the process it"
        " starts) (default: run until stopped)",
    )

    migrate = command("migrate", "apply the migrations (the schema)", cmd_migrate)
    migrate.add_argument(
        "--revision",
        default="head",
        help="the revision to upgrade to (default: %(default)s, the latest)",
    )

    net = command(
        "create-network", "create a network and print its operator key", cmd_create_network
    )
    net.add_argument(
        "--code",
        required=True,
        help="the network's code in URLs: lowercase letters, digits and inner hyphens, 1-32"
        " characters, fixed forever (required)",
    )
    net.add_argument("--name", required=True, help="the network's name (required)")
    net.add_argument(
        "--unit-name", required=True, help="the name of the unit, as 'hour' (required)"
    )
    net.add_argument("--unit-symbol", required=True, help="the unit's symbol, as 'h' (required)")
    net.add_argument(
        "--scale",
        type=_int_at_least(0),
        default=2,
        help="decimal places of the minor unit: with 2, amounts are hundredths; fixed forever"
        " (default: %(default)s)",
    )
    net.add_argument(
        "--default-credit-limit",
        type=_whole_number,
        default=0,
        metavar="MINOR_UNITS",
        help="the credit limit of accounts opened without one (default: %(default)s)",
    )
    net.add_argument(
        "--default-balance-max",
        type=_whole_number,
        default=None,
        metavar="MINOR_UNITS",
        help="the most accounts opened without a limit may hold (default: no upper limit)",
    )
    net.add_argument(
        "--label",
        default="created by CLI",
        help="the operator key's label (default: '%(default)s')",
    )
    net.add_argument(
        "--no-key",
        action="store_true",
        help="do not create an operator key (default: create one and print it, once)",
    )

    key = command("create-key", "create an API key and print its token, once", cmd_create_key)
    key.add_argument(
        "--role",
        required=True,
        choices=["platform", "operator", "auditor", "member"],
        help="what the key may do: platform (every network), operator (one network), auditor"
        " (read one network), member (one account) (required)",
    )
    key.add_argument(
        "--network",
        metavar="CODE",
        help="the key's network (default: none; required for operator, auditor and member keys)",
    )
    key.add_argument(
        "--account",
        metavar="CODE",
        help="the member's account (default: none; required for a member key)",
    )
    key.add_argument(
        "--label",
        default="created by CLI",
        help="a label to tell keys apart (default: '%(default)s')",
    )

    keys = command(
        "list-keys", "list API keys (their public ids, never their secrets)", cmd_list_keys
    )
    keys.add_argument(
        "--network",
        metavar="CODE",
        help="only this network's keys (default: every key, the platform keys too)",
    )

    revoke = command(
        "revoke-key", "revoke an API key: it fails from its next request on", cmd_revoke_key
    )
    revoke.add_argument(
        "key_id",
        metavar="KEY_ID",
        help="the key's public id, the part of the key between 'mc_' and the next '_'"
        " (see list-keys)",
    )
    revoke.add_argument(
        "--reason",
        help="why, kept in the audit log (default: none)",
    )

    backup = command(
        "backup", "write a backup of the database to a file (pg_dump's custom format)", cmd_backup
    )
    backup.add_argument(
        "file",
        metavar="FILE",
        help="where to write it; it replaces the file only once it is complete",
    )

    restore = command(
        "restore",
        "restore a backup into an empty database, then run the ledger and audit checks",
        cmd_restore,
    )
    restore.add_argument("file", metavar="FILE", help="a file written by 'mutualcredit backup'")

    command("check", "run the ledger's invariant checks", cmd_check)

    audit = command("audit", "the hash-chained audit log", cmd_audit)
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_sub.add_parser(
        "verify",
        help="seal pending records, then recompute every network's chain (exit 1 if broken)",
        description="Seal pending audit records, then recompute every network's hash chain;"
        " exit 1 and name the first broken record if one is.",
        formatter_class=_formatter,
        parents=[common],
    )
    verify.add_argument(
        "--network", metavar="CODE", help="only this network (default: every network)"
    )
    verify.add_argument(
        "--no-seal",
        action="store_true",
        help="do not seal pending records first (default: seal them)",
    )
    verify.set_defaults(func=cmd_audit)

    api = command("openapi", "write the OpenAPI document", cmd_openapi)
    api.add_argument(
        "--output",
        metavar="FILE",
        default="-",
        help="where to write it (default: %(default)s, the standard output)",
    )
    return parser


# -- running a command ---------------------------------------------------------------------------

_OPTION_OF_SETTING = {
    "database_url": "--database-url",
    "data_dir": "--data-dir",
    "host": "--host",
    "port": "--port",
    "workers": "--workers",
}


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in _OPTION_OF_SETTING:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _describe_invalid(exc: ValidationError, names: Mapping[str, str]) -> str:
    """A validation error in one line, naming the option each problem is in."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        problems.append(f"{names.get(field, field)}: {error['msg']}")
    return "; ".join(problems)


def _setting_names() -> dict[str, str]:
    """A setting by its environment variable, and by its option where it has one."""
    names = {name: f"MUTUALCREDIT_{name.upper()}" for name in Settings.model_fields}
    for name, option in _OPTION_OF_SETTING.items():
        names[name] = f"{option} or {names[name]}"
    return names


def _fail(message: str, status: int) -> int:
    print(f"mutualcredit: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        return _fail(f"invalid setting: {_describe_invalid(exc, _setting_names())}", EXIT_USAGE)
    configure_logging(settings.log_level, settings.log_format)
    try:
        status: int = args.func(args, settings)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader of the output went away (`mutualcredit openapi | head`): nothing more to
        # say to it, and nothing for Python to flush into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except CommandError as exc:
        return _fail(str(exc), exc.exit_status)
    except ProblemError as exc:
        # A refusal or an unknown name: the same words the API would answer with.
        return _fail(exc.detail, EXIT_USAGE)
    except ValidationError as exc:
        return _fail(_describe_invalid(exc, OPTION_OF_FIELD), EXIT_USAGE)
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if database_unreachable(exc):
            return _fail(f"lost the database: {first_line(exc)}", EXIT_DATABASE)
        if isinstance(exc, DBAPIError):
            # A write the database's own rules refuse (a constraint, a trigger).
            return _fail(f"the database refused it: {first_line(exc.orig or exc)}", EXIT_USAGE)
        log.debug("the command failed", exc_info=True)
        return _fail(
            f"internal error: {type(exc).__name__}: {first_line(exc)}"
            " (MUTUALCREDIT_LOG_LEVEL=debug shows where)",
            EXIT_BUG,
        )
    return status
