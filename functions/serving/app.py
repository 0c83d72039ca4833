"""The ``serving`` function: recommendations, similar items and health (faiss + onnxruntime, never torch).

Routes parse and map; ``functions.serving.service`` holds the logic; models load lazily on a tenant's
first request (nothing heavy at import). Errors are mapped by the api function's one error module.
"""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum

from functions.api.errors import install_error_handlers
from functions.common.observability import metrics
from functions.common.runtime import freeze_long_lived_objects
from functions.serving.routes import health, items, recommendations


def create_app() -> FastAPI:
    """Build the serving application."""
    app = FastAPI(
        title="embedrec serving",
        version="0.1.0",
        description="Personalised recommendations, similar items and model health for a shop.",
    )
    for router in (recommendations.router, items.router, health.router):
        app.include_router(router)
    install_error_handlers(app)
    return app


app = create_app()
# One EMF flush per invocation: latency, cache hits, ANN time and items served.
handler = metrics.log_metrics(Mangum(app, lifespan="off"))
freeze_long_lived_objects()  # after the imports of the init phase (functions.common.runtime)
