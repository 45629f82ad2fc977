"""The `mutualcredit` command: serve, migrate, bootstrap networks and keys, back up, audit.

A person or a script runs it, so it never answers with a traceback: an error is one line on
stderr, `mutualcredit: <what went wrong>`, and the exit status says which kind of error it was
(EXIT_STATUSES below; `mutualcredit --help` lists them).

Each command that writes does so in one transaction that names the command as the actor of its
audit records (`cli:create-network`), as authentication names a key for a request.
"""

from mutualcredit.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
