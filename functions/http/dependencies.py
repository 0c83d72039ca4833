"""Dependencies every route may take: the request's clock and the api function's settings.

Routes take their collaborators as ``Annotated[..., Depends(...)]`` aliases (this module's, the
caller's in ``functions.http.principal``, and each capability's own in its ``dependencies`` module), so
a test replaces any of them with ``app.dependency_overrides`` and starts a cold container with
``functions.common.container.reset_container_state``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

from functions.common.settings import ApiSettings, get_api_settings


def utc_now() -> datetime:
    """The request's clock (a dependency, so tests can pin time)."""
    return datetime.now(UTC)


ClockDep = Annotated[datetime, Depends(utc_now)]
#: The api function's settings (validated at cold start, cached per container).
SettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
