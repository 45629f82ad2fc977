"""`python -m mutualcredit.cli`: the `mutualcredit` command."""

from mutualcredit.cli.main import main

raise SystemExit(main())
