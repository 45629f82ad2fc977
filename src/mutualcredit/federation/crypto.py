"""Keys and signatures between networks.

Each network signs with Ed25519. Its private key is stored sealed with AES-256-GCM under the
deployment's secret key (MUTUALCREDIT_SECRET_KEY, or a file `secret.key` in the data directory
created on first use with mode 0600); the key id is the associated data, so a sealed key cannot
be swapped onto another id. Neither the secret key nor a private key is ever logged or returned.

Node-to-node requests carry these headers (after RFC 9421, HTTP Message Signatures, reduced to
what our protocol needs; every component is covered):

    MC-From, MC-To      the sending and receiving network codes
    MC-Key-Id           the sender's key id (the receiver checks it against the keys its
                        operator registered for that peer)
    MC-Created          unix seconds; refused when further than the allowed skew from now
    MC-Nonce            random, refused if seen before within the window
    MC-Signature        base64url Ed25519 signature over the signature base:

    mutualcredit-federation/1 request
    <METHOD>
    <path and query>
    <from>
    <to>
    <created>
    <nonce>
    <hex sha256 of the body>

Responses are signed too (the receipt a sender keeps is the signed response): MC-Key-Id and
MC-Signature over "mutualcredit-federation/1 response\\n<request nonce>\\n<status>\\n<body sha>".

A rotation notice is signed twice: the request by the old key (the peer trusts it: continuity),
and, inside its body, the statement of the rotation (key_base) by the new key (possession).
"""

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from mutualcredit import sealing

PROTOCOL = "mutualcredit-federation/1"
SIGNED_HEADERS = ("mc-from", "mc-to", "mc-key-id", "mc-created", "mc-nonce", "mc-signature")


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value: Any) -> bytes:
    """The bytes both sides hash and sign: JSON with sorted keys, no spaces."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_secret_key(configured: str | None, data_dir: Path) -> bytes:
    """The deployment's 32-byte sealing key: configured (base64url), or kept in data_dir."""
    if configured:
        key = b64d(configured)
        if len(key) != 32:
            raise ValueError("MUTUALCREDIT_SECRET_KEY must be 32 bytes, base64url-encoded")
        return key
    path = data_dir / "secret.key"
    if not path.exists():
        # Written to a private temporary file, then linked into place: workers starting at
        # once agree on one key, and none ever reads a half-written file.
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".secret.key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(b64e(secrets.token_bytes(32)))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker won: use its key
        finally:
            tmp.unlink()
    key = b64d(path.read_text().strip())
    if len(key) != 32:
        raise ValueError(f"{path} must hold 32 bytes, base64url-encoded")
    return key


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    public_key: bytes
    sealed_private_key: bytes


def new_node_key(network_code: str, secret_key: bytes) -> NewKey:
    private = Ed25519PrivateKey.generate()
    key_id = f"{network_code}.{secrets.token_hex(6)}"
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = sealing.seal(raw, key_id.encode(), secret_key)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return NewKey(key_id=key_id, public_key=public, sealed_private_key=sealed)


def unseal(sealed: bytes, key_id: str, secret_key: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(sealing.unseal(sealed, key_id.encode(), secret_key))


@dataclass(frozen=True, slots=True)
class Signer:
    """A network's active key, unsealed in memory for the duration of a request."""

    network_code: str
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, data: bytes) -> str:
        return b64e(self.private_key.sign(data))


def request_base(
    method: str, path: str, sender: str, receiver: str, created: str, nonce: str, body: bytes
) -> bytes:
    return "\n".join(
        (
            f"{PROTOCOL} request",
            method.upper(),
            path,
            sender,
            receiver,
            created,
            nonce,
            sha256_hex(body),
        )
    ).encode()


def response_base(nonce: str, status: int, body: bytes) -> bytes:
    return "\n".join((f"{PROTOCOL} response", nonce, str(status), sha256_hex(body))).encode()


def key_base(
    sender: str,
    receiver: str,
    old_key_id: str,
    new_key_id: str,
    public_key: str,
    retire_at: str,
    compromised: bool,
) -> bytes:
    """What the new key signs in a rotation notice: who rotates, toward whom, which key replaces
    which, and when the old one retires."""
    return "\n".join(
        (
            f"{PROTOCOL} key",
            sender,
            receiver,
            old_key_id,
            new_key_id,
            public_key,
            retire_at,
            "compromised" if compromised else "retired",
        )
    ).encode()


def verify(public_key: bytes, signature: str, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(b64d(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True
