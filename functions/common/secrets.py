"""Secret values: given directly (local stack, tests) or fetched once from Secrets Manager."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters
from pydantic import SecretStr

from functions.common.errors import ServiceUnavailableError

_MAX_AGE_SECONDS = 300  # rotated secrets are picked up within five minutes


def resolve_secret(value: SecretStr | None, arn: str | None) -> str:
    """The secret's value: ``value`` when set, else the Secrets Manager secret ``arn`` (cached)."""
    if value is not None:
        return value.get_secret_value()
    if not arn:
        raise ValueError("neither a secret value nor a secret ARN is configured")
    try:
        secret = parameters.get_secret(arn, max_age=_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        raise ServiceUnavailableError("a secret could not be read, please retry") from exc
    return str(secret)
