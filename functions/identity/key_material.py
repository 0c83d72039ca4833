"""API key material: generation, hashing and recognition."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_MARKER = "sk_live_"
_SECRET_BYTES = 32  # 256 bits: a fast hash is safe for keys this random (argon2 is for passwords)
DISPLAY_PREFIX_LENGTH = len(KEY_MARKER) + 4


@dataclass(frozen=True)
class NewKeyMaterial:
    """A freshly generated key: the secret (shown once), its display prefix and its stored hash."""

    secret: str
    prefix: str
    key_hash: str


def generate_key() -> NewKeyMaterial:
    """A new random API key."""
    secret = KEY_MARKER + secrets.token_urlsafe(_SECRET_BYTES)
    return NewKeyMaterial(secret=secret, prefix=secret[:DISPLAY_PREFIX_LENGTH], key_hash=hash_key(secret))


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(credential: str) -> bool:
    """Whether a bearer credential is an API key rather than a JWT."""
    return credential.startswith(KEY_MARKER)
