"""The REST API (FastAPI): /v1/ask, /v1/chat/completions (OpenAI-compatible), /v1/retrieve, health, metrics, chat UI.

Models load in a background thread at startup, so /healthz answers at once and /readyz says when the model and
the store are ready. Answers are generated a bounded number at a time; a bounded queue waits for a slot and any
request beyond it gets 503 at once. Every error is a typed JSON body in OpenAI's shape
({"error": {"message", "type", "code"}}); no traceback ever reaches a client.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.sse import format_sse_event
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from finassist.config import Settings
from finassist.domain import Hit
from finassist.inference import openai_compat as oa
from finassist.inference.chain import Answer, AskInput, RAGChain, RunRecord
from finassist.inference.monitoring import Metrics, Tracer, redact, secret_values
from finassist.llm import LLM, LLMError, LLMTimeoutError, LLMUnavailableError
from finassist.prompt import PromptTooLongError
from finassist.store import StoreError
from finassist.symbols import load_aliases

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.headers = status, message, type_, headers or {}


def error_body(status: int, message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": status}}


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


# --- services and limits -----------------------------------------------------------------------------------------
@dataclass
class Services:
    """Everything a request needs, loaded once per process; `ready` is set when it is all there."""

    settings: Settings
    llm: LLM | None = None
    chain: RAGChain | None = None
    tracer: Tracer | None = None
    metrics: Metrics = field(default_factory=Metrics)
    error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def load(self) -> None:
        from finassist.embed import get_embedder
        from finassist.llm import open_llm
        from finassist.retrieval import Retriever
        from finassist.store import open_store

        try:
            s = self.settings
            store = open_store(s)
            embedder = get_embedder(s.embedding_model, s.embedding_device)
            self.llm = self.llm or open_llm(s)
            aliases = load_aliases(s.symbol_aliases)
            self.chain = RAGChain(Retriever(store, embedder), self.llm, s, aliases, on_finish=self._finished)
            self.ready.set()
            log.info("ready: %s (adapter: %s)", self.llm.info.model, self.llm.info.adapter or "none")
            # After readiness: a slow or unreachable tracking server (MLflow retries for minutes) must not hold
            # the API back; requests answered before it is set up are not traced.
            self.tracer = self._tracer() if s.tracing else None
        except Exception as exc:  # shown by /readyz: without any configured secret a message might quote
            self.error = redact(f"{type(exc).__name__}: {exc}", secret_values(self.settings))
            log.error("loading failed: %s", self.error)

    def _tracer(self) -> Tracer | None:
        """Monitoring is not worth an outage: without a reachable tracking store the API serves untraced."""
        try:
            return Tracer(self.settings, self.llm.info)  # type: ignore[union-attr]
        except Exception as exc:
            scheme = self.settings.tracking_uri.split(":", 1)[0]  # not the URI: it may carry credentials
            log.error("tracing disabled: cannot use the MLflow %s store (%s)", scheme, type(exc).__name__)
            return None

    def _finished(self, run: RunRecord) -> None:
        self.metrics.observe_run(run)
        if self.tracer is not None:
            self.tracer.record(run)

    def require_chain(self) -> RAGChain:
        if self.chain is None:
            message = self.error or "still loading the model and the store"
            raise ApiError(503, message, "not_ready", {"Retry-After": "2"})
        return self.chain


class Gate:
    """At most `slots` generations at once; at most `queue` requests waiting; beyond that 503 straight away."""

    def __init__(self, slots: int, queue: int, metrics: Metrics):
        self.slots = asyncio.Semaphore(slots)
        self.max_queue = queue
        self.waiting = 0
        self.metrics = metrics

    async def acquire(self) -> None:
        if self.slots.locked() and self.waiting >= self.max_queue:
            self.metrics.rejected.inc()
            message = "server busy: too many requests in the queue; retry later"
            raise ApiError(503, message, "busy", {"Retry-After": "5"})
        self.waiting += 1
        self.metrics.queued.inc()
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
            self.metrics.queued.dec()
        self.metrics.in_flight.inc()

    def release(self) -> None:
        self.metrics.in_flight.dec()
        self.slots.release()


_DONE = object()


async def iterate_in_thread(make: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
    """Run a blocking generator in its own thread and yield its items here. When the consumer stops early (client
    disconnected), the thread closes the generator at the next item, which stops the generation."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down)
            stop.set()

    def produce() -> None:
        gen = make()
        try:
            for item in gen:
                if stop.is_set():
                    break
                put((item, None))
        except BaseException as exc:
            put((_DONE, exc))
            return
        finally:
            gen.close()
        put((_DONE, None))

    threading.Thread(target=produce, name="answer-stream", daemon=True).start()
    try:
        while True:
            item, exc = await queue.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()


# --- middleware --------------------------------------------------------------------------------------------------
class LimitsAndMetrics:
    """Pure ASGI: 413 for oversized bodies (declared or streamed), and request count/latency per route (latency
    runs to the last byte, so streamed answers are measured whole)."""

    def __init__(self, app, max_body: int, metrics: Metrics):
        self.app, self.max_body, self.metrics = app, max_body, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        status = {"code": 500, "sent": False}
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(send)
            return self._observe(scope, 413, started)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyTooLarge:
            if not status["sent"]:
                await self._too_large(send)
            status["code"] = 413
        self._observe(scope, status["code"], started)

    async def _too_large(self, send) -> None:
        body = json.dumps(
            error_body(413, f"request body larger than {self.max_body} bytes", "request_too_large")
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _observe(self, scope, code: int, started: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(endpoint, str(code)).inc()
        self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)


class _BodyTooLarge(Exception):
    pass


# --- response models ---------------------------------------------------------------------------------------------
class RetrieveResponse(BaseModel):
    hits: list[Hit]  # the retriever's own hit model: what /v1/ask would put in the prompt
    took_ms: float


class AskRequest(AskInput):
    stream: bool = False


def sse(event: str, data: Any) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, default=str))


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# --- the app -----------------------------------------------------------------------------------------------------
def create_app(
    settings: Settings, services: Services | None = None, background: tuple[Callable[[], Any], ...] = ()
) -> FastAPI:
    """The API. `services` may come pre-built (tests share one loaded model); `background` callables (e.g. the
    streaming feature pipeline) run in daemon threads once the app starts."""
    services = services or Services(settings)
    metrics = services.metrics
    gate = Gate(settings.api_max_concurrency, settings.api_max_queue, metrics)

    async def lifespan(app: FastAPI):
        if not services.ready.is_set():
            threading.Thread(target=services.load, name="load-models", daemon=True).start()
        for task in background:
            threading.Thread(target=task, name=getattr(task, "__name__", "background"), daemon=True).start()
        yield
        if services.tracer is not None:
            services.tracer.flush()

    app = FastAPI(
        title="finassist",
        version="0.1.0",
        summary="A financial assistant answering from fresh news (RAG), OpenAI-compatible.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(LimitsAndMetrics, max_body=settings.api_max_body_bytes, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(error_body(exc.status, exc.message, exc.type), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p not in ("body", "query"))
            problems.append(f"{where or 'body'}: {err['msg']}")
        return JSONResponse(error_body(422, "; ".join(problems), "invalid_request_error"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail), "http_error"), exc.status_code)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception):
        err = as_api_error(exc)
        return JSONResponse(error_body(err.status, err.message, err.type), err.status, headers=err.headers)

    def authorized(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.api_key.get_secret_value().encode()
        ):
            raise ApiError(401, "missing or invalid API key (Authorization: Bearer <key>)", "unauthorized",
                           {"WWW-Authenticate": "Bearer"})

    auth = [Depends(authorized)]

    async def answer_stream(request: AskInput) -> AsyncIterator[str | Answer]:
        """The chain's output, with a generation slot held until the last item; errors before the first token
        surface as HTTP errors (the caller awaits the first item before answering)."""
        chain = services.require_chain()
        await gate.acquire()
        try:
            async for item in iterate_in_thread(lambda: chain.stream(request)):
                yield item
        finally:
            gate.release()

    async def start_stream(request: AskInput) -> tuple[Any, AsyncIterator[str | Answer]]:
        stream = answer_stream(request)
        try:
            first = await anext(stream)
        except BaseException as exc:
            await stream.aclose()
            raise as_api_error(exc) from None
        return first, stream

    # --- routes ----------------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def ui() -> HTMLResponse:
        page = resources.files("finassist.inference").joinpath("static/index.html").read_text()
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "auth_required": settings.api_key is not None}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not services.ready.is_set():
            status = "failed" if services.error else "loading"
            return JSONResponse({"status": status, "error": services.error, "pid": os.getpid()}, 503)
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
            }
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/retrieve", response_model=RetrieveResponse, dependencies=auth)
    async def retrieve(
        q: Annotated[str, Query(min_length=1, max_length=2_000, description="The search text.")],
        k: Annotated[int, Query(ge=1, le=50)] = settings.retrieval_k,
        symbols: Annotated[str | None, Query(max_length=400, description="Comma-separated tickers.")] = None,
        since: Annotated[datetime | None, Query(description="Only news published at or after (ISO 8601).")] = None,
    ) -> RetrieveResponse:
        chain = services.require_chain()
        wanted = [s.strip().upper() for s in (symbols or "").split(",") if s.strip()]
        started = time.monotonic()
        try:
            hits = await run_in_threadpool(
                chain.retriever.retrieve_recent,
                q,
                k,
                settings.recency_weight,
                settings.recency_half_life_hours,
                symbols=wanted,
                since=since,
            )
        except Exception as exc:
            raise as_api_error(exc) from None
        return RetrieveResponse(
            hits=hits,
            took_ms=round((time.monotonic() - started) * 1000, 2),
        )

    @app.post(
        "/v1/ask", response_model=Answer, dependencies=auth, responses={200: {"content": {"text/event-stream": {}}}}
    )
    async def ask(body: AskRequest):
        """Answer a question from fresh news. With `stream`, server-sent events: `token` events ({"text"}), then
        one `done` event with the whole answer, sources and usage (or an `error` event)."""
        request = AskInput(**body.model_dump(exclude={"stream"}))
        first, stream = await start_stream(request)
        if not body.stream:
            answer = first
            async for item in stream:
                answer = item
            return answer

        async def events() -> AsyncIterator[bytes]:
            item = first
            try:
                while True:
                    if isinstance(item, Answer):
                        yield sse("done", item.model_dump(mode="json"))
                    else:
                        yield sse("token", {"text": item})
                    item = await anext(stream)
            except StopAsyncIteration:
                return
            except Exception as exc:
                err = as_api_error(exc)
                yield sse("error", error_body(err.status, err.message, err.type))
            finally:
                await stream.aclose()

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat_completions(body: oa.ChatCompletionRequest):
        """OpenAI-compatible chat completions, with RAG applied to the last user message."""
        try:
            request = oa.to_ask_input(body)
        except ValueError as exc:
            raise ApiError(422, str(exc), "invalid_request_error") from None
        cid = oa.completion_id()
        first, stream = await start_stream(request)
        if not body.stream:
            answer = first
            async for item in stream:
                answer = item
            return JSONResponse(oa.completion(answer, cid))
        info = services.llm.info  # type: ignore[union-attr]
        model = oa.model_name(info.model, info.adapter)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        async def chunks() -> AsyncIterator[bytes]:
            item = first
            try:
                yield _data(oa.chunk(cid, model, {"role": "assistant", "content": ""}))
                while True:
                    if isinstance(item, Answer):
                        for final in oa.final_chunks(cid, item, include_usage):
                            yield _data(final)
                    else:
                        yield _data(oa.chunk(cid, model, {"content": item}))
                    item = await anext(stream)
            except StopAsyncIteration:
                pass
            except Exception as exc:
                err = as_api_error(exc)
                yield _data(error_body(err.status, err.message, err.type))
            finally:
                await stream.aclose()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.get("/v1/models", dependencies=auth)
    async def models() -> dict[str, Any]:
        chain = services.require_chain()
        info = chain.llm.info
        model = oa.model_name(info.model, info.adapter)
        return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "finassist"}]}

    return app


def app_from_env() -> FastAPI:
    """The API with settings from the environment: the factory each `finassist serve --workers N` process imports."""
    return create_app(Settings())


def _data(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, default=str)}\n\n".encode()
