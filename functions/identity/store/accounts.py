"""Human accounts in DynamoDB, keyed by e-mail (login is by e-mail and password alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.common.dynamo import (
    conditional_write,
    from_iso,
    to_iso,
    unavailable_on_failure,
)
from functions.common.errors import ConflictError, NotFoundError
from functions.identity.models import Account, Role

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class AccountRepository:
    """Reads and writes accounts."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def create(self, account: Account) -> None:
        """Store a new account; ``ConflictError`` if the e-mail is already registered."""
        with conditional_write(
            "the account store", ConflictError(f"an account with e-mail '{account.email}' already exists")
        ):
            self._table.put_item(
                Item={
                    "email": account.email,
                    "account_id": account.account_id,
                    "tenant_id": account.tenant_id,
                    "role": account.role.value,
                    "password_hash": account.password_hash,
                    "created_at": to_iso(account.created_at),
                },
                ConditionExpression="attribute_not_exists(email)",
            )

    def get_by_email(self, email: str) -> Account:
        """The account registered with ``email``; ``NotFoundError`` if none."""
        with unavailable_on_failure("the account store"):
            item = self._table.get_item(Key={"email": email}, ConsistentRead=True).get("Item")
        if item is None:
            raise NotFoundError("no such account")
        return _from_item(item)


def _from_item(item: dict[str, Any]) -> Account:
    return Account(
        account_id=str(item["account_id"]),
        tenant_id=str(item["tenant_id"]),
        email=str(item["email"]),
        role=Role(item["role"]),
        password_hash=str(item["password_hash"]),
        created_at=from_iso(str(item["created_at"])),
    )
