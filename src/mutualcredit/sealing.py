"""Secrets stored sealed: AES-256-GCM under the deployment's secret key
(MUTUALCREDIT_SECRET_KEY), a random 96-bit nonce in front of the ciphertext, and associated data
naming what the secret belongs to, so that a sealed value copied to another row does not open.

Federation seals its networks' private keys with it (the key id as associated data), webhooks
their endpoints' signing secrets (the endpoint and the secret's version)."""

import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def seal(plain: bytes, associated: bytes, key: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plain, associated)


def unseal(sealed: bytes, associated: bytes, key: bytes) -> bytes:
    """The plain bytes; raises cryptography's InvalidTag for another key or another owner."""
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
