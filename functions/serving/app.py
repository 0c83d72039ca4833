"""The ``serving`` function: recommendations, similar items and health (faiss + onnxruntime, never torch).

This module holds the liveness route; ranking arrives with the serving capability (issue 4).
"""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel


class Liveness(BaseModel):
    """``GET /health``."""

    status: str


def create_app() -> FastAPI:
    """Build the serving application."""
    app = FastAPI(title="embedrec serving", version="0.1.0")

    @app.get("/health", response_model=Liveness, tags=["health"])
    def get_health() -> Liveness:
        """Liveness: the function is up and can take requests."""
        return Liveness(status="healthy")

    return app


app = create_app()
handler = Mangum(app, lifespan="off")
