"""Secret values: given directly (local stack, tests) or fetched once from Secrets Manager.

Powertools' module-level ``parameters.get_secret`` builds its provider on a new boto3 session, which
parses the endpoint and service data again: 102-114 ms CPU of the first request that reads a secret
(measured in serving's built bundle on Python 3.12), against 4-5 ms for a provider on the
container's Secrets Manager client, whose session has parsed them already.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters
from pydantic import SecretStr

from functions.common import aws
from functions.common.container import per_container
from functions.common.errors import ServiceUnavailableError

_MAX_AGE_SECONDS = 300  # rotated secrets are picked up within five minutes


@per_container
def secrets_provider() -> parameters.SecretsProvider:
    """The container's secret reader (its cache of values lives as long as the container)."""
    return parameters.SecretsProvider(boto3_client=aws.secretsmanager_client())


def resolve_secret(value: SecretStr | None, arn: str | None) -> str:
    """The secret's value: ``value`` when set, else the Secrets Manager secret ``arn`` (cached)."""
    if value is not None:
        return value.get_secret_value()
    if not arn:
        raise ValueError("neither a secret value nor a secret ARN is configured")
    try:
        secret = secrets_provider().get(arn, max_age=_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        raise ServiceUnavailableError("a secret could not be read, please retry") from exc
    return str(secret)
