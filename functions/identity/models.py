"""Domain models shared by logic and data layers (request/response models live with the routes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

#: Prices and revenues, in the shop's currency unit (uploads and serving filters alike): a billion
#: covers every real basket, even in currencies with large units, and keeps analytics sums sane.
MAX_AMOUNT: Final = 1e9


class Plan(StrEnum):
    """A tenant's plan; it sets request quotas."""

    FREE = "free"
    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"


#: Active API keys a tenant may hold at once, per plan (revoke one to make room for another).
API_KEY_LIMITS: Final[dict[Plan, int]] = {
    Plan.FREE: 5,
    Plan.STARTER: 20,
    Plan.PRO: 50,
    Plan.ENTERPRISE: 200,
}


class Role(StrEnum):
    """A human account's role inside its tenant."""

    ADMIN = "admin"
    MEMBER = "member"


class Permission(StrEnum):
    """What an API key may do."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Tenant:
    """A shop."""

    tenant_id: str
    name: str
    slug: str
    plan: Plan
    status: str
    settings: dict[str, object]
    created_at: datetime
    #: Bumped by every API key revocation: a container's remembered keys of older generations are re-read.
    credential_generation: int = 0
    #: Set by the first stored interactions: the tenant's retraining schedule is then enabled.
    has_data: bool = False


@dataclass(frozen=True)
class Account:
    """A human login of a tenant."""

    account_id: str
    tenant_id: str
    email: str
    role: Role
    password_hash: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    """A stored API key: only its hash and a display prefix, never the secret."""

    key_id: str
    tenant_id: str
    name: str
    key_prefix: str
    key_hash: str
    permissions: frozenset[Permission]
    status: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling, resolved once per request. Every data path is built from ``tenant_id``."""

    tenant_id: str
    subject: str
    kind: str  # "user" or "api_key"
    role: Role | None
    permissions: frozenset[Permission] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        """Whether this principal holds ``permission``."""
        return permission in self.permissions

    @property
    def is_tenant_admin(self) -> bool:
        """A human admin of the tenant (API keys never are)."""
        return self.kind == "user" and self.role is Role.ADMIN
