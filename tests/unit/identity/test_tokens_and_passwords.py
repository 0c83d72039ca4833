"""Pure auth logic: password rule and hashing, JWT issue/verify, API key material."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from functions.common.errors import AuthenticationError, InvalidInputError
from functions.identity.key_material import DISPLAY_PREFIX_LENGTH, generate_key, hash_key, looks_like_api_key
from functions.identity.models import Role
from functions.identity.passwords import check_password_strength, hash_password, verify_password
from functions.identity.tokens import issue_access_token, verify_access_token

SECRET = "unit-test-secret-unit-test-secret-0123"
NOW = datetime(2025, 1, 7, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("password", ["SecurePass123!", "correct-Horse-battery", "Zz9zz9zz9zz9"])
def test_strong_passwords_pass(password: str) -> None:
    check_password_strength(password, "admin@techgadgets.com")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt!", "10 to 128"),
        ("x" * 129 + "A1!", "10 to 128"),
        ("onlylowercaseletters", "three of"),
        ("ONLYUPPER123456", "three of"),
        ("Techgadgetsadmin1!", "e-mail"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_password_strength(password, "techgadgetsadmin@x.com")


@pytest.mark.parametrize(
    "password",
    [
        "Password1!",
        "Qwerty12345",
        "Welcome123!",
        "Passw0rd!23",
        "Iloveyou123!",
        "Summer2024!",
        "Techgadgets2025!",
    ],
)
def test_common_and_guessable_passwords_are_refused(password: str) -> None:
    # Each mixes three character classes and is long enough: only a strength estimate catches them.
    with pytest.raises(InvalidInputError, match="too easy to guess"):
        check_password_strength(password, "admin@techgadgets.com")


def test_a_password_longer_than_the_estimator_reads_is_judged_by_its_prefix() -> None:
    check_password_strength("Correct-Horse-Battery-" * 5 + "9!", "admin@techgadgets.com")
    with pytest.raises(InvalidInputError, match="too easy to guess"):
        check_password_strength("Aa1!" + "a" * 120, "admin@techgadgets.com")


def test_password_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    hashed = hash_password("SecurePass123!")

    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "SecurePass123!")
    assert not verify_password(hashed, "SecurePass123?")
    assert not verify_password("not-a-hash", "SecurePass123!")


def test_token_round_trip_carries_tenant_and_role() -> None:
    token = issue_access_token(
        secret=SECRET,
        account_id="user_1",
        tenant_id="tenant_1",
        role=Role.ADMIN,
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )

    claims = verify_access_token(token, secret=SECRET)

    assert (claims.account_id, claims.tenant_id, claims.role) == ("user_1", "tenant_1", Role.ADMIN)


def test_expired_token_is_refused() -> None:
    token = issue_access_token(
        secret=SECRET,
        account_id="u",
        tenant_id="t",
        role=Role.MEMBER,
        now=datetime.now(UTC) - timedelta(hours=2),
        ttl=timedelta(hours=1),
    )

    with pytest.raises(AuthenticationError, match="expired"):
        verify_access_token(token, secret=SECRET)


def _swap_claim(token: str, **changes: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_tampered_claims_wrong_key_and_alg_none_are_refused() -> None:
    token = issue_access_token(
        secret=SECRET,
        account_id="u",
        tenant_id="tenant_a",
        role=Role.MEMBER,
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )
    header_none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    unsigned = f"{header_none}.{token.split('.')[1]}."

    for bad in (_swap_claim(token, tenant_id="tenant_b"), unsigned, token + "x"):
        with pytest.raises(AuthenticationError):
            verify_access_token(bad, secret=SECRET)
    with pytest.raises(AuthenticationError):
        verify_access_token(token, secret=SECRET + "-other")


def test_api_keys_are_random_prefixed_and_hashed() -> None:
    first, second = generate_key(), generate_key()

    assert first.secret != second.secret
    assert looks_like_api_key(first.secret) and not looks_like_api_key("eyJhbGciOi.x.y")
    assert first.prefix == first.secret[:DISPLAY_PREFIX_LENGTH]
    assert first.key_hash == hash_key(first.secret) and len(first.key_hash) == 64
    assert first.secret not in first.key_hash
    assert len(first.secret) >= 40
