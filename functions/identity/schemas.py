"""Request and response models of the identity routes: tenants, accounts, login and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from functions.common.request_models import StrictRequestModel
from functions.identity.models import Permission, Plan, Role

Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        examples=["admin@techgadgets.com"],
    ),
]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["techgadgets"])]
ResourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
#: Taken exactly as typed: a password's spaces are characters, never stripped.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=256)]


# DynamoDB numbers: 38 significant digits, magnitudes from 1e-130 to below 1e126.
_SMALLEST, _LARGEST = 1e-130, 9.9e125


def _check_storable(value: Any, where: str) -> None:
    """Refuse numbers DynamoDB cannot store (and so a 500 later), anywhere in a JSON-like value."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        magnitude = abs(value)
        if magnitude and not _SMALLEST <= magnitude <= _LARGEST:
            raise ValueError(f"{where}: {value!r} is outside the storable range (1e-130 to 9.9e125)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{where}[{index}]")


#: Settings that training reads as numbers, with the range that makes sense for each.
_NUMERIC_SETTINGS: dict[str, tuple[float, float]] = {
    "embedding_dimension": (8, 512),
    "quality_floor": (0.0, 1.0),
}


class TenantCreate(StrictRequestModel):
    """``POST /api/admin/tenants``."""

    name: Annotated[str, Field(min_length=1, max_length=200, examples=["TechGadgets Store"])]
    slug: Slug
    plan: Plan = Plan.FREE
    settings: dict[str, Any] = Field(default_factory=dict, examples=[{"default_model": "lightgcn"}])

    @field_validator("settings")
    @classmethod
    def _settings_small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 50:
            raise ValueError("at most 50 settings")
        _check_storable(value, "settings")
        for key, (low, high) in _NUMERIC_SETTINGS.items():
            number = value.get(key)
            if key in value and (
                isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= high
            ):
                raise ValueError(f"settings.{key} must be a number from {low:g} to {high:g}")
        return value


class TenantOut(BaseModel):
    """A tenant as the API shows it."""

    id: str
    name: str
    slug: str
    plan: Plan
    status: str
    settings: dict[str, Any]
    created_at: datetime


class AccountCreate(StrictRequestModel):
    """``POST /api/admin/users``."""

    tenant_id: ResourceId
    email: Email
    password: Password
    role: Role = Role.MEMBER

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        return value.lower()


class AccountOut(BaseModel):
    """An account as the API shows it (never the password hash)."""

    id: str
    tenant_id: str
    email: str
    role: Role
    created_at: datetime


class LoginRequest(StrictRequestModel):
    """``POST /api/v1/auth/login``."""

    email: Email
    password: Password

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        return value.lower()


class LoginResponse(BaseModel):
    """An access token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    tenant_id: str
    role: Role


class ApiKeyCreate(StrictRequestModel):
    """``POST /api/v1/api-keys``."""

    name: Annotated[str, Field(min_length=1, max_length=100, examples=["Production - Website"])]
    permissions: Annotated[list[Permission], Field(min_length=1, max_length=2)] = [Permission.READ]


class ApiKeyOut(BaseModel):
    """A key as listed: never the secret."""

    id: str
    name: str
    key_prefix: str
    permissions: list[Permission]
    status: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    """A new key: the only response that carries the secret."""

    key: str


class ApiKeyList(BaseModel):
    """``GET /api/v1/api-keys``."""

    api_keys: list[ApiKeyOut]
