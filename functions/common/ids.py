"""Identifiers of the records the functions create (tenants, accounts, keys, uploads, jobs, A/B tests)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as ``tenant_3f9a1c2b7d4e``."""
    return f"{prefix}_{secrets.token_hex(6)}"
