"""`python -m mutualcredit.cli`: the `mutualcredit` command."""

from mutualcredit.cli.main import main

# Imported, not run (pkgutil.walk_packages imports every module of the package), it does nothing.
if __name__ == "__main__":
    raise SystemExit(main())
