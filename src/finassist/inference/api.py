"""The REST API (FastAPI): /v1/ask, /v1/chat/completions (OpenAI-compatible), /v1/retrieve, health, metrics, chat UI.

Models load in a background thread at startup, so /healthz answers at once and /readyz says when the model and
the store are ready. Answers are generated a bounded number at a time; a bounded queue waits for a slot and any
request beyond it gets 503 at once; a request whose client leaves is cancelled, queued or generating. Every error is
a typed JSON body in OpenAI's shape ({"error": {"message", "type", "code"}}); no traceback ever reaches a client.

This module wires the app; the routes live by concern in `routes_answers`, `routes_search` and `routes_ops`, the
limits in `limits` (ASGI) and `protocol` (uvicorn/h11), errors in `errors`, what requests use in `services`.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request

from finassist.config import Settings
from finassist.inference.errors import ApiError, add_error_handlers, as_api_error, error_body
from finassist.inference.limits import Gate, HttpGuard
from finassist.inference.protocol import METRICS_STATE_KEY, uvicorn_options
from finassist.inference.routes_answers import AskRequest, add_answer_routes, iterate_in_thread, sse
from finassist.inference.routes_ops import add_ops_routes
from finassist.inference.routes_search import RetrieveResponse, add_search_routes
from finassist.inference.services import BackgroundTask, Services

__all__ = [
    "ApiError", "AskRequest", "BackgroundTask", "RetrieveResponse", "Services", "app_from_env", "as_api_error",
    "create_app", "error_body", "iterate_in_thread", "sse", "uvicorn_options",
]


def bearer_auth(settings: Settings) -> list[Any]:
    """The dependency list that requires `Authorization: Bearer <FINASSIST_API_KEY>` when a key is set."""

    def authorized(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.api_key.get_secret_value().encode()
        ):
            raise ApiError(401, "missing or invalid API key (Authorization: Bearer <key>)", "unauthorized",
                           {"WWW-Authenticate": "Bearer"})

    return [Depends(authorized)]


def admin_auth(settings: Settings) -> list[Any]:
    """Admin routes: the API key when one is set; without one, only clients on this machine (loopback)."""

    def local_only(request: Request) -> None:
        host = request.client.host if request.client else ""
        if settings.api_key is None and not (host == "::1" or host.startswith("127.")):
            raise ApiError(403, "admin routes need FINASSIST_API_KEY to be set when called from another machine",
                           "forbidden")

    return [*bearer_auth(settings), Depends(local_only)]


def create_app(
    settings: Settings, services: Services | None = None, background: tuple[Callable[[], Any], ...] = ()
) -> FastAPI:
    """The API. `services` may come pre-built (tests share one loaded model); `background` callables (e.g. the
    streaming feature pipeline) run in daemon threads once the app starts, and /readyz fails when one fails."""
    services = services or Services(settings)
    metrics = services.metrics
    gate = Gate(settings.answer_concurrency, settings.answer_queue, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not services.ready.is_set():
            threading.Thread(target=services.load, name="load-models", daemon=True).start()
        for task in background:
            services.start_background(task)
        yield {METRICS_STATE_KEY: metrics}  # uvicorn's lifespan state: `protocol.py` counts what it refuses
        if services.watcher is not None:
            services.watcher.stop()
        if services.tracer is not None:
            services.tracer.flush()

    docs = settings.api_docs
    app = FastAPI(
        title="finassist",
        version="0.1.0",
        summary="A financial assistant answering from fresh news (RAG), OpenAI-compatible.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings, app.state.services = settings, services
    app.add_middleware(
        HttpGuard,
        metrics=metrics,
        max_body=settings.api_max_body_bytes,
        body_timeout_s=settings.api_body_timeout_s,
        max_headers=settings.api_max_headers,
        max_header_bytes=settings.api_max_header_bytes,
    )
    add_error_handlers(app)
    auth = bearer_auth(settings)
    add_ops_routes(app, settings, services, auth, admin_auth(settings))
    add_search_routes(app, settings, services, auth)
    add_answer_routes(app, services, gate, auth)
    return app


def app_from_env() -> FastAPI:
    """The API with settings from the environment: the factory each `finassist serve --workers N` process imports."""
    return create_app(Settings())
