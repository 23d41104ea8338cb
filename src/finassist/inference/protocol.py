"""How uvicorn runs the API: h11 with bounded headers, and a request-head timeout against slowloris.

uvicorn's default HTTP parser (httptools) accepts headers of any size (measured: a 64 MB header answered 200, eight
of them at once took 437 MB), and neither parser times out a connection that trickles a request head or never sends
one; uvicorn's keep-alive timeout only runs between requests and is cancelled by the first byte of the next one.
So the API runs on h11, whose buffer limit (`h11_max_incomplete_event_size`) bounds what a connection may hold
before its head is complete, with two additions in `GuardedH11Protocol`:
- an overlong head gets 431 (h11's own hint) where uvicorn would answer 400;
- after a connection opens, and after each response, the client has FINASSIST_API_HEADER_TIMEOUT_S to deliver a
  complete request head: a partial head then gets 408, an idle connection is closed (the body has its own
  timeout, in `limits.HttpGuard`).
"""

from __future__ import annotations

import asyncio
import functools
import http
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from finassist.config import Settings
from finassist.inference.errors import error_bytes

METRICS_STATE_KEY = "finassist.metrics"  # the app's Metrics, in uvicorn's lifespan state (see api.create_app)


class _Connection(h11.Connection):
    """h11's connection, remembering the protocol error uvicorn swallows (it carries the status to answer with)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self):  # type: ignore[override]
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, header_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, self.config.h11_max_incomplete_event_size or 16 * 1024)
        self.header_timeout_s = header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None

    # --- the request-head timer ------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer(self.header_timeout_s)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request (a new cycle)
        if not self.transport.is_closing():
            # Idle time is uvicorn's keep-alive timeout; a head begun within it still gets the full head timeout.
            self._arm_head_timer(self.timeout_keep_alive + self.header_timeout_s)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm_head_timer()  # the connection leaves this protocol
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self, seconds: float) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(seconds, self._head_timed_out, self.cycle)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self, cycle_when_armed: Any) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.cycle is not cycle_when_armed:
            return  # closed, or a request head arrived since: the request has its own limits
        if self.cycle is not None and not self.cycle.response_complete:
            return  # still answering the last request
        buffered, _ = self.conn.trailing_data
        if self.conn.their_state is h11.IDLE and buffered:
            self._send_error(408, "request head not received in time")
        else:  # idle (nothing sent), or still sending the body of a request already answered (413)
            self.transport.close()

    # --- error answers below the app --------------------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        error = self.conn.last_error
        status = getattr(error, "error_status_hint", 400) if error is not None else 400
        message = "request headers too large" if status == 431 else msg
        self._send_error(status, message)

    def _send_error(self, status: int, message: str) -> None:
        kind = {408: "request_timeout", 431: "request_headers_too_large"}.get(status, "invalid_request_error")
        body = error_bytes(status, message, kind)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        try:
            reason = http.HTTPStatus(status).phrase.encode()
            output = self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
            output += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:  # mid-response: nothing can be said any more
            output = b""
        self.transport.write(output)
        self.transport.close()
        metrics = self.app_state.get(METRICS_STATE_KEY)
        if metrics is not None:  # below routing: no endpoint is known
            metrics.requests.labels("unmatched", str(status)).inc()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run/uvicorn.Config keyword arguments for the API (picklable, for `serve --workers N`)."""
    return {
        "http": functools.partial(GuardedH11Protocol, header_timeout_s=settings.api_header_timeout_s),
        "h11_max_incomplete_event_size": settings.api_max_header_bytes,
        "timeout_keep_alive": settings.api_keep_alive_s,
    }
