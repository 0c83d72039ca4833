"""The e2e tier runs on the same local stack as the integration tier (or the one EMBEDREC_API_URL names)."""

from tests.integration.conftest import api, stack

__all__ = ["api", "stack"]
