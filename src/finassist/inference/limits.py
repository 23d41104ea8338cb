"""Limits between the socket and the routes: generation slots (`Gate`) and the HTTP guard (`HttpGuard`).

The guard is a pure ASGI middleware around the whole app. Per request it
- refuses too many or too large headers (431); h11 bounds what a connection may buffer before that
  (`protocol.py`), the guard enforces the exact figure;
- reads the body itself, up to FINASSIST_API_MAX_BODY_BYTES (413, declared or chunked) and within
  FINASSIST_API_BODY_TIMEOUT_S (408), then hands it to the app; FastAPI would turn an error raised while it reads
  the body into a 400;
- cancels the request when the client disconnects (a queued request leaves the queue, a generation is stopped):
  work for nobody is never done;
- counts every outcome in finassist_requests_total: the wire status, or the status of an error reported inside a
  streamed 200, or 499 when the client went away before the end;
- answers any unexpected exception with a typed 500 (logged once, with its traceback).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio

from finassist.inference.errors import ApiError, as_api_error, error_bytes
from finassist.inference.monitoring import Metrics

log = logging.getLogger(__name__)

CLIENT_GONE = 499  # nginx's "client closed request": no response reached anyone
OUTCOME = "finassist.outcome"  # scope key of the request's `Outcome`


class Gate:
    """At most `slots` generations at once; at most `queue` requests waiting; beyond that 503 straight away.
    A waiting request that is cancelled (its client left) leaves the queue."""

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


@dataclass
class Outcome:
    """What became of one request, as the metrics count it."""

    status: int = 500
    started: bool = False  # the response head went out
    complete: bool = False  # ... and its last byte
    client_gone: bool = False
    stream_error: int | None = None  # status of an error event inside a streamed 200

    @property
    def counted(self) -> int:
        if self.client_gone and not self.complete:
            return CLIENT_GONE
        return self.stream_error or self.status


def report_stream_error(scope: dict[str, Any], status: int) -> None:
    """A streamed answer ended in an error event: count the request with that status, not its 200."""
    outcome = scope.get(OUTCOME)
    if outcome is not None:
        outcome.stream_error = status


class _Refused(ApiError):
    """Refused before the app saw the request; with `close`, the connection is closed after the answer."""

    def __init__(self, status: int, message: str, type_: str, close: bool = False):
        super().__init__(status, message, type_, {"Connection": "close"} if close else None)


class HttpGuard:
    def __init__(self, app, metrics: Metrics, max_body: int, body_timeout_s: float, max_headers: int,
                 max_header_bytes: int):
        self.app, self.metrics = app, metrics
        self.max_body, self.body_timeout_s = max_body, body_timeout_s
        self.max_headers, self.max_header_bytes = max_headers, max_header_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        outcome = scope[OUTCOME] = Outcome()

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                outcome.status, outcome.started = message["status"], True
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                outcome.complete = True  # before the send: uvicorn then wakes readers with http.disconnect
            await send(message)

        try:
            self._check_headers(scope)
            body = await self._read_body(scope, receive)
        except _Refused as refusal:
            await _send_error(tracked_send, refusal)
        except _ClientGone:
            outcome.client_gone = True
        else:
            await self._run(scope, receive, tracked_send, body, outcome)
        finally:
            self._observe(scope, outcome.counted, started)

    # --- before the app ----------------------------------------------------------------------------------------
    def _check_headers(self, scope) -> None:
        headers = scope.get("headers") or []
        size = sum(len(name) + len(value) + 4 for name, value in headers)  # "name: value\r\n"
        if len(headers) > self.max_headers or size > self.max_header_bytes:
            message = (f"request headers too large: at most {self.max_headers} headers, "
                       f"{self.max_header_bytes} bytes")
            raise _Refused(431, message, "request_headers_too_large", close=True)

    async def _read_body(self, scope, receive) -> bytes:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise self._too_large()
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            message = f"request body not received within {self.body_timeout_s:g} s"
            raise _Refused(408, message, "request_timeout", close=True) from None

    def _too_large(self) -> _Refused:
        # No "Connection: close": uvicorn reads and drops the rest of the body, so the client gets to read the 413
        # (closing on unread data resets the connection); `protocol.py` bounds how long that may take.
        return _Refused(413, f"request body larger than {self.max_body} bytes", "request_too_large")

    # --- the app, cancelled when its client leaves ------------------------------------------------------------
    async def _run(self, scope, receive, send, body: bytes, outcome: Outcome) -> None:
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def app_receive():
            if replay:
                return replay.pop()
            message = await receive()
            if message["type"] == "http.disconnect" and not outcome.complete:
                outcome.client_gone = True
            return message

        with anyio.CancelScope() as cancel:

            async def watch() -> None:
                # Once the body is in, the server's receive() only returns when the client disconnects (or the
                # response is complete).
                message = await receive()
                if message["type"] == "http.disconnect" and not outcome.complete:
                    outcome.client_gone = True
                    cancel.cancel()

            watcher = asyncio.ensure_future(watch())
            try:
                await self.app(scope, app_receive, send)
            except Exception as exc:
                if outcome.started:
                    raise  # a bug mid-stream: uvicorn closes the connection and logs it
                await _send_error(send, as_api_error(exc))
            finally:
                watcher.cancel()

    # --- metrics -------------------------------------------------------------------------------------------------
    def _observe(self, scope, status: int, started: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)


class _ClientGone(Exception):
    pass


async def _send_error(send, err: ApiError) -> None:
    body = error_bytes(err.status, err.message, err.type)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
