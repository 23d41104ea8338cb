"""The API's typed errors: every failure a client sees is `{"error": {"message", "type", "code"}}` (OpenAI's shape),
never a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from finassist.llm import LLMError, LLMTimeoutError, LLMUnavailableError
from finassist.prompt import PromptTooLongError
from finassist.store import StoreError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.headers = status, message, type_, headers or {}


def error_body(status: int, message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": status}}


def error_bytes(status: int, message: str, type_: str) -> bytes:
    return json.dumps(error_body(status, message, type_)).encode()


def as_api_error(exc: BaseException) -> ApiError:
    """The HTTP face of a failure inside the chain; unknown errors become a bare 500 (logged with traceback)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PromptTooLongError):
        return ApiError(413, str(exc), "request_too_large")
    if isinstance(exc, LLMTimeoutError):
        return ApiError(504, f"generation timed out: {exc}", "timeout")
    if isinstance(exc, LLMUnavailableError):
        return ApiError(503, str(exc), "llm_unavailable", {"Retry-After": "5"})
    if isinstance(exc, LLMError):
        return ApiError(502, str(exc), "llm_error")
    if isinstance(exc, StoreError):
        return ApiError(503, f"feature store unavailable: {exc}", "store_unavailable", {"Retry-After": "5"})
    if isinstance(exc, ValueError):
        return ApiError(422, str(exc), "invalid_request_error")
    log.error("unhandled error", exc_info=exc)
    return ApiError(500, "internal error (logged on the server)", "internal_error")


def error_response(exc: BaseException) -> JSONResponse:
    err = as_api_error(exc)
    return JSONResponse(error_body(err.status, err.message, err.type), err.status, headers=err.headers)


def add_error_handlers(app: FastAPI) -> None:
    """Typed JSON for our errors, validation errors and Starlette's own (404, 405). Anything else is turned into a
    500 by `limits.HttpGuard`, which also keeps it out of Starlette's ServerErrorMiddleware: that one re-raises
    every exception after answering, so uvicorn would log a second traceback."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p not in ("body", "query"))
            problems.append(f"{where or 'body'}: {err['msg']}")
        return JSONResponse(error_body(422, "; ".join(problems), "invalid_request_error"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail), "http_error"), exc.status_code,
                            headers=exc.headers)
