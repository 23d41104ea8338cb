"""A local fake of an OpenAI-compatible chat endpoint (what vLLM, TGI, Ollama and OpenAI itself serve) for tests.

It speaks the documented protocol of `POST /v1/chat/completions` (a JSON `chat.completion`, or with `stream: true`
`text/event-stream` lines `data: {chat.completion.chunk}` ending in `data: [DONE]`, plus a usage chunk when
`stream_options.include_usage` is set) and `GET /v1/models`, on an ephemeral port of 127.0.0.1, in a thread:

    with FakeOpenAI(reply="Shares rose [1].", api_key="sk-test") as fake:
        client = openai.OpenAI(base_url=fake.url, api_key="sk-test")

`reply` may be a callable of the request's messages, so the same server can play a teacher model that answers
each question differently. Knobs: `fail_next(n, status)` for outages and rate limits, `delay_s` before a response,
`chunk_delay_s` between streamed chunks, `usage=False` for servers that report no token usage.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Messages = list[dict[str, Any]]
Reply = str | Callable[[Messages], str]

# OpenAI's error `type` and `code` per status, as its API reports them.
ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def count_words(text: str) -> int:
    """The fake's tokenizer: one token per word or punctuation mark (deterministic, easy to compute in a test)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def prompt_tokens_of(messages: Messages) -> int:
    """What the fake reports as `usage.prompt_tokens`: words of every message plus 3 per message."""
    return sum(count_words(str(m.get("content") or "")) + 3 for m in messages)


def pieces_of(text: str) -> list[str]:
    """The fake's completion tokens: each word with the whitespace before it ("Shares", " rose", " [1].")."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    status: int = 200
    usage: dict[str, int] | None = None  # what the response reported, when it did

    @property
    def messages(self) -> Messages:
        return list((self.body or {}).get("messages", []))


@dataclass
class _Failure:
    remaining: int
    status: int
    message: str
    retry_after: float | None = None


@dataclass
class FakeOpenAI:
    reply: Reply = "The news you have does not cover that."
    api_key: str | None = None  # when set, requests must carry `Authorization: Bearer <api_key>`
    model: str = "fake-model"
    usage: bool = True  # False: a server that ignores stream_options and reports no usage
    delay_s: float = 0.0  # before the response starts
    chunk_delay_s: float = 0.0  # between streamed chunks
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (`.../v1`)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes handlers sleeping in a delay
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- knobs -----------------------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 500, message: str = "", retry_after: float | None = None) -> None:
        """Answer the next `n` chat requests with HTTP `status` and an OpenAI error body."""
        with self._lock:
            self._failures.append(_Failure(n, status, message or HTTPStatus(status).phrase, retry_after))

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- behaviour -------------------------------------------------------------------------------
    def _take_failure(self) -> _Failure | None:
        with self._lock:
            while self._failures and self._failures[0].remaining <= 0:
                self._failures.pop(0)
            if not self._failures:
                return None
            self._failures[0].remaining -= 1
            return self._failures[0]

    def _reply_text(self, messages: Messages) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; False when it is."""
        return not (seconds > 0 and self._closing.wait(seconds))


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet test output

        def handle(self) -> None:
            # A client may drop a kept-alive connection or give up mid-answer (its timeout): nobody left to answer.
            with contextlib.suppress(ConnectionError):
                super().handle()

        # --- plumbing ----------------------------------------------------------------------------
        def _record(self, body: dict[str, Any] | None) -> RecordedRequest:
            rec = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with fake._lock:
                fake.requests.append(rec)
            return rec

        def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, rec: RecordedRequest, status: int, message: str, headers: dict[str, str] | None = None):
            kind, code = ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
            rec.status = status
            self._send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

        def _authorised(self, rec: RecordedRequest) -> bool:
            if fake.api_key is None or self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                return True
            # Like OpenAI, say the key is wrong without echoing it.
            self._error(rec, 401, "Incorrect API key provided.")
            return False

        # --- routes ------------------------------------------------------------------------------
        def do_GET(self) -> None:
            rec = self._record(None)
            if not self._authorised(rec):
                return
            if self.path.rstrip("/") != "/v1/models":
                self._error(rec, 404, f"unknown path {self.path}")
                return
            model = {"id": fake.model, "object": "model", "created": 0, "owned_by": "fake"}
            self._send_json(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"null")
            except (ValueError, json.JSONDecodeError):
                body = None
            rec = self._record(body if isinstance(body, dict) else None)
            self._chat(rec, body)

        def _chat(self, rec: RecordedRequest, body: Any) -> None:
            if not fake._sleep(fake.delay_s):
                self.close_connection = True
                return
            if not self._authorised(rec):
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(rec, 404, f"unknown path {self.path}")
                return
            failure = fake._take_failure()
            if failure is not None:
                extra = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else None
                self._error(rec, failure.status, failure.message, extra)
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
                self._error(rec, 400, "'messages' is required and must be a non-empty list")
                return
            messages = body["messages"]
            try:
                text = fake._reply_text(messages)
            except Exception as exc:  # a broken reply function: say so to the client, like a server would
                self._error(rec, 500, f"reply failed: {type(exc).__name__}: {exc}")
                return
            pieces = pieces_of(text)
            limit = body.get("max_completion_tokens") or body.get("max_tokens")
            finish = "stop"
            if limit is not None and len(pieces) > int(limit):
                pieces, finish = pieces[: int(limit)], "length"
            usage = {"prompt_tokens": prompt_tokens_of(messages), "completion_tokens": len(pieces)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            head = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "created": int(time.time()),
                "model": body.get("model") or fake.model,
            }
            if body.get("stream"):
                self._stream(rec, head, pieces, finish, usage, body)
                return
            rec.usage = usage if fake.usage else None
            message = {"role": "assistant", "content": "".join(pieces)}
            completion = {
                **head,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            }
            if fake.usage:
                completion["usage"] = usage
            self._send_json(200, completion)

        def _stream(
            self,
            rec: RecordedRequest,
            head: dict[str, Any],
            pieces: list[str],
            finish: str,
            usage: dict[str, int],
            body: dict[str, Any],
        ) -> None:
            include_usage = fake.usage and bool((body.get("stream_options") or {}).get("include_usage"))
            rec.usage = usage if include_usage else None
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(choices: list[dict[str, Any]], **extra: Any) -> None:
                event = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
                if include_usage:
                    event.setdefault("usage", None)  # OpenAI sends usage: null on every chunk but the last
                self._write(f"data: {json.dumps(event)}\n\n")

            def delta(content: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
                return {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}

            chunk([delta({"role": "assistant", "content": ""})])
            for piece in pieces:
                if not fake._sleep(fake.chunk_delay_s):
                    self.close_connection = True
                    return
                chunk([delta({"content": piece})])
            chunk([delta({}, finish)])
            if include_usage:
                chunk([], usage=usage)
            self._write("data: [DONE]\n\n")
            self._write("")  # the last, empty chunk of the chunked encoding

        def _write(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler
