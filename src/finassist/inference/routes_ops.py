"""Operational routes: /healthz, /readyz, /metrics, POST /v1/admin/reload (follow the registry's alias now), the
chat UI at / and, with docs off, a keyed /openapi.json.

With FINASSIST_API_KEY set, /metrics needs the key too (Prometheus sends it with `authorization: {credentials}`)
unless FINASSIST_API_METRICS_PUBLIC; /healthz and /readyz stay open for load balancers and orchestrators.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from finassist.config import Settings
from finassist.inference.errors import ApiError
from finassist.inference.services import Services


@cache
def chat_page() -> tuple[str, dict[str, str]]:
    """The chat UI and its security headers. The page's one inline script and style are allowed by hash, nothing
    else: no other origin, no injected script, no framing."""
    page = resources.files("finassist.inference").joinpath("static/index.html").read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies)

    policy = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
              "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    headers = {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return page, headers


def add_ops_routes(
    app: FastAPI, settings: Settings, services: Services, auth: list[Depends], admin: list[Depends]
) -> None:
    metrics_auth = [] if settings.api_metrics_public else auth

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def ui() -> HTMLResponse:
        page, headers = chat_page()
        return HTMLResponse(page, headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """The process is alive; `background`: the state of the tasks running beside the API (the pipeline)."""
        background = {t.name: t.state for t in services.background}
        return {"status": "ok", "auth_required": settings.api_key is not None, "background": background}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready to answer: model and store loaded, and no background task (the in-process pipeline) failed."""
        background = {t.name: t.describe() for t in services.background}
        if not services.ready.is_set():
            status = "failed" if services.error else "loading"
            return JSONResponse({"status": status, "error": services.error, "pid": os.getpid(),
                                 "background": background}, 503)
        failed = services.failed_background()
        if failed:
            error = "; ".join(f"{t.name} stopped: {t.error}" for t in failed)
            return JSONResponse({"status": "degraded", "error": error, "pid": os.getpid(),
                                 "background": background}, 503)
        info = services.llm.info  # type: ignore[union-attr]
        return JSONResponse(
            {
                "status": "ready",
                "pid": os.getpid(),  # which process answered, with `serve --workers N`
                "model": info.model,
                "adapter": info.adapter,
                "prompt_version": services.chain.prompt_version or None,  # type: ignore[union-attr]
                "backend": info.backend,
                "tracing": services.tracer is not None,
                "background": background,
                # what the alias watcher follows, its last error (the served version kept serving), and the
                # adapters still in use: the current one, then swapped-out ones finishing their answers
                "champion": (services.watcher.describe() if services.watcher else {}) | {"in_use": services.in_use()},
            }
        )

    @app.post("/v1/admin/reload", dependencies=admin)
    def reload() -> dict[str, Any]:
        """Look at the registry now: when the alias (`@champion`) names another version, load it beside the served
        model and swap; answers under way finish on the old one. A failed load leaves the old one serving."""
        services.require_chain()
        check = services.watcher.check()  # type: ignore[union-attr]
        if check.failed:
            raise ApiError(500, check.detail, "reload_failed")
        return check.as_dict() | {"in_use": services.in_use()}

    @app.get("/metrics", include_in_schema=False, dependencies=metrics_auth)
    async def prometheus() -> Response:
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if not settings.api_docs:  # the schema still documents the API, for clients holding the key

        @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())
