"""The ``api`` function: FastAPI app for /api/admin/* and /api/v1/* (all but the serving routes)."""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum

from functions.analytics.routes import ab_tests
from functions.analytics.routes import reports as analytics
from functions.api.console_routes import router as console_router
from functions.common.observability import metrics
from functions.common.runtime import freeze_long_lived_objects
from functions.common.settings import get_api_settings
from functions.http.errors import install_error_handlers
from functions.http.principal import install_authenticator
from functions.identity.routes import admin, api_keys, auth
from functions.ingestion import routes as ingestion
from functions.training.routes import models, training


def create_app() -> FastAPI:
    """Build the API application."""
    app = FastAPI(
        title="embedrec API",
        version="0.1.0",
        description="Tenants, auth, API keys and data ingestion for the embedrec recommender.",
    )
    for router in (
        admin.router,
        auth.router,
        api_keys.router,
        ingestion.router,
        training.router,
        models.router,
        analytics.router,
        ab_tests.router,
        console_router,
    ):
        app.include_router(router)
    install_error_handlers(app)
    install_authenticator(app, get_api_settings)
    return app


app = create_app()
# One EMF flush per invocation, as in the serving function.
handler = metrics.log_metrics(Mangum(app, lifespan="off"))
freeze_long_lived_objects()  # after the imports of the init phase (functions.common.runtime)
