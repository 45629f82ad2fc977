"""Webhook secrets: made, sealed, and used to sign a delivery as Standard Webhooks describes.

A secret is `whsec_` followed by 32 random bytes in base64, the form Standard Webhooks' own
libraries read. It is stored sealed with AES-256-GCM under the deployment's secret key (the key
federation seals its private keys under, MUTUALCREDIT_SECRET_KEY), the endpoint id and the
secret's version as associated data, so a sealed secret cannot be moved to another endpoint.

A delivery is signed by the `standardwebhooks` package (a signer we did not write):
`webhook-signature` holds `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret
in force, separated by spaces; a receiver accepts the message when any of them verifies.
"""

import base64
import secrets
import uuid
from datetime import datetime

from standardwebhooks import Webhook

from mutualcredit import sealing

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _aad(endpoint_id: uuid.UUID, version: int) -> bytes:
    return f"webhook {endpoint_id} {version}".encode()


def seal(secret: str, endpoint_id: uuid.UUID, version: int, key: bytes) -> bytes:
    return sealing.seal(secret.encode(), _aad(endpoint_id, version), key)


def unseal(sealed: bytes, endpoint_id: uuid.UUID, version: int, key: bytes) -> str:
    return sealing.unseal(sealed, _aad(endpoint_id, version), key).decode()


def headers(
    event_id: str, timestamp: datetime, body: str, secrets_in_force: list[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for one message, signed by every secret given."""
    signatures = [Webhook(s).sign(event_id, timestamp, body) for s in secrets_in_force]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
