"""Password hashing (argon2id) and the strength rule for new accounts."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from functions.common.errors import InvalidInputError

MIN_LENGTH = 10
MAX_LENGTH = 128
#: zxcvbn's score (0-4): 3 means "safely unguessable" (about 10^8 guesses or more).
MIN_SCORE = 3
#: zxcvbn estimates at most 72 characters; a prefix that long is already beyond guessing when strong.
_ESTIMATED_LENGTH = 72
_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"), re.compile(r"[^A-Za-z0-9]"))


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults follow RFC 9106's low-memory recommendation (64 MiB, t=3).
    return PasswordHasher()


def check_password_strength(password: str, email: str) -> None:
    """Refuse weak passwords: 10–128 characters, three of four character classes, not the e-mail's name,
    and not easy to guess by zxcvbn's estimate (common passwords, keyboard walks, words with digits).
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInputError(f"password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if sum(1 for pattern in _CLASSES if pattern.search(password)) < 3:
        raise InvalidInputError(
            "password must mix at least three of: lower-case letters, upper-case letters, digits, symbols"
        )
    local_part, _, domain = email.lower().partition("@")
    if len(local_part) >= 4 and local_part in password.lower():
        raise InvalidInputError("password must not contain the e-mail address's name")
    estimate = _estimate(password[:_ESTIMATED_LENGTH], (local_part, *domain.split(".")))
    if estimate["score"] < MIN_SCORE:
        hint = estimate.get("feedback", {}).get("warning") or "it is close to a common password"
        raise InvalidInputError(f"password is too easy to guess: {hint.rstrip('.')}; try a longer passphrase")


def _estimate(password: str, user_inputs: tuple[str, ...]) -> dict[str, Any]:
    # Imported on first use: ~0.2 s of dictionaries that only account creation needs, not every cold start.
    from zxcvbn import zxcvbn

    result: dict[str, Any] = zxcvbn(password, user_inputs=[part for part in user_inputs if part])
    return result


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so both paths cost the same time."""
    return hash_password("embedrec-no-such-account")
