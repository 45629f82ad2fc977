"""mutualcredit: a mutual credit ledger service on PostgreSQL."""

__version__ = "0.1.0"
