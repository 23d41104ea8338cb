"""Answer routes: POST /v1/ask (JSON or server-sent events), POST /v1/chat/completions (OpenAI-compatible) and
GET /v1/models.

Every answer holds a generation slot (`limits.Gate`) from its first item to its last. The chain runs in its own
thread (`iterate_in_thread`); when the request is cancelled (its client left, see `limits.HttpGuard`) the chain is
told to stop: a generation not yet begun never starts, one under way stops at its next token.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any

from fastapi import FastAPI, Request
from fastapi.params import Depends
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.sse import format_sse_event

from finassist.inference import openai_compat as oa
from finassist.inference.chain import Answer, AskInput, RAGChain
from finassist.inference.errors import ApiError, as_api_error, error_body
from finassist.inference.limits import Gate, report_stream_error
from finassist.inference.services import Services

_DONE = object()
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def iterate_in_thread(
    make: Callable[[], Iterator[Any]], stop: threading.Event | None = None
) -> AsyncIterator[Any]:
    """Run a blocking generator in its own thread and yield its items here. When the consumer stops early (client
    disconnected), `stop` is set and the thread closes the generator at the next item, which stops the
    generation."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = stop or threading.Event()

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


class AskRequest(AskInput):
    stream: bool = False


def sse(event: str, data: Any) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, default=str))


def _data(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, default=str)}\n\n".encode()


def add_answer_routes(app: FastAPI, services: Services, gate: Gate, auth: list[Depends]) -> None:

    async def answer_stream(request: AskInput, chain: RAGChain) -> AsyncGenerator[str | Answer, None]:
        """The chain's output, with a generation slot held until the last item and the chain leased (a model swap
        meanwhile lets this answer finish on the model it started with)."""
        try:
            await gate.acquire()  # cancelled while waiting (client gone): leaves the queue
            stop = threading.Event()
            try:
                async with aclosing(iterate_in_thread(lambda: chain.stream(request, cancel=stop), stop)) as items:
                    async for item in items:
                        yield item
            finally:
                gate.release()
        finally:
            services.release(chain)

    async def start_stream(request: AskInput) -> tuple[Any, AsyncGenerator[str | Answer, None], RAGChain]:
        """The first item, the rest and the chain answering: errors before the first token surface as HTTP
        errors."""
        chain = services.lease()
        stream = answer_stream(request, chain)
        try:
            first = await anext(stream)
        except Exception as exc:
            await stream.aclose()
            raise as_api_error(exc) from None
        except BaseException:  # cancelled: the client left
            await stream.aclose()
            raise
        return first, stream, chain

    async def last_item(first: Any, stream: AsyncGenerator[str | Answer, None]) -> Answer:
        """The whole answer, for a client that wants no stream (a failure after the first token is still typed)."""
        answer = first
        try:
            async for item in stream:
                answer = item
        except Exception as exc:
            raise as_api_error(exc) from None
        finally:
            await stream.aclose()
        return answer

    @app.post(
        "/v1/ask", response_model=Answer, dependencies=auth, responses={200: {"content": {"text/event-stream": {}}}}
    )
    async def ask(body: AskRequest, http: Request):
        """Answer a question from fresh news. With `stream`, server-sent events: `token` events ({"text"}), then
        one `done` event with the whole answer, sources and usage (or an `error` event)."""
        request = AskInput(**body.model_dump(exclude={"stream"}))
        first, stream, _ = await start_stream(request)
        if not body.stream:
            return await last_item(first, stream)

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
                report_stream_error(http.scope, err.status)
                yield sse("error", error_body(err.status, err.message, err.type))
            finally:
                await stream.aclose()

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat_completions(body: oa.ChatCompletionRequest, http: Request):
        """OpenAI-compatible chat completions, with RAG applied to the last user message."""
        try:
            request = oa.to_ask_input(body)
        except ValueError as exc:
            raise ApiError(422, str(exc), "invalid_request_error") from None
        cid = oa.completion_id()
        first, stream, chain = await start_stream(request)
        if not body.stream:
            return JSONResponse(oa.completion(await last_item(first, stream), cid))
        info = chain.llm.info
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
                report_stream_error(http.scope, err.status)
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
