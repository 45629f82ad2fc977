"""Request fingerprints: the same request always hashes the same, whatever its key order."""

import hashlib
from typing import Any

import orjson


def request_hash(scope: str, payload: Any) -> bytes:
    """SHA-256 over a scope (which endpoint) and the canonical JSON of the validated request."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(scope.encode() + b"\n" + canonical).digest()
