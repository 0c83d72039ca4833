"""JWT access tokens (HS256, expiry enforced) for human accounts."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from functions.common.errors import AuthenticationError
from functions.identity.models import Role

ISSUER = "embedrec"
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "tenant_id", "role"]


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    account_id: str
    tenant_id: str
    role: Role
    expires_at: datetime


def issue_access_token(
    *, secret: str, account_id: str, tenant_id: str, role: Role, now: datetime, ttl: timedelta
) -> str:
    """A signed access token for an account."""
    claims = {
        "sub": account_id,
        "tenant_id": tenant_id,
        "role": role.value,
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_access_token(token: str, *, secret: str) -> AccessClaims:
    """Verify signature, algorithm, issuer and expiry; ``AuthenticationError`` on any failure."""
    try:
        # Pinning the algorithm list is what refuses `alg: none` and algorithm-confusion tokens.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={"require": _REQUIRED_CLAIMS},
        )
        role = Role(claims["role"])
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("the access token has expired; log in again") from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise AuthenticationError("the access token is invalid") from exc
    return AccessClaims(
        account_id=str(claims["sub"]),
        tenant_id=str(claims["tenant_id"]),
        role=role,
        expires_at=datetime.fromtimestamp(int(claims["exp"])).astimezone(),
    )


def token_lifetime_s(token: str) -> float:
    """Seconds until a token (already verified) expires, from its ``exp`` claim; 0 if unreadable."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return max(0.0, float(claims["exp"]) - time.time())
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
        return 0.0
