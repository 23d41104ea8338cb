"""A local fake of Alpaca's news API (REST `/v1beta1/news` and the msgpack news websocket) for tests.

It speaks the protocol that alpaca-py 0.44 speaks (see docs in DESIGN.md), binds ephemeral ports on 127.0.0.1 and runs
in background threads. REST `/v1beta1/news` answers as Alpaca documents it (docs.alpaca.markets "News articles", and
alpaca-py's `NewsRequest`): `start`/`end` are inclusive bounds on `created_at` (default: the beginning of the current
day, and now), there is no filter on `updated_at`; `sort` (asc|desc, default desc) orders by updated date, and the
page token is a cursor into that order (Alpaca's documented example token decodes to "<updated_at ns>|<id>");
`limit` is 1..50, default 10; an article holds only its latest version.

    with FakeAlpaca() as fake:
        client = NewsClient(fake.key, fake.secret, url_override=fake.rest_url)
        stream = NewsDataStream(fake.key, fake.secret, url_override=fake.stream_url)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

NEWS_PATH = "/v1beta1/news"
DEFAULT_LIMIT = 10  # Alpaca's default page size
MAX_LIMIT = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ts: datetime) -> str:
    """Alpaca's JSON timestamp form: RFC 3339 in UTC with a `Z`."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def make_article(
    article_id: int,
    created_at: datetime,
    symbols: Iterable[str] = ("AAPL",),
    updated_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An article in Alpaca's REST JSON schema, with plausible defaults for the text fields."""
    article = {
        "id": article_id,
        "headline": f"Headline {article_id}",
        "summary": f"Summary of article {article_id}.",
        "author": "Fake Newswire",
        "content": f"<p>Body of article {article_id}.</p>",
        "url": f"https://news.example/{article_id}",
        "symbols": list(symbols),
        "source": "fake",
        "created_at": iso(created_at),
        "updated_at": iso(updated_at or created_at),
        "images": [],
    }
    article.update(fields)
    return article


def _sort_key(article: dict[str, Any]) -> tuple[int, int]:
    """Alpaca sorts news by updated date: (updated_at in ns since the epoch, id)."""
    ts = parse_ts(article["updated_at"])
    ns = ((ts - EPOCH) // timedelta(microseconds=1)) * 1000
    return ns, int(article["id"])


def _encode_token(key: tuple[int, int]) -> str:
    return base64.b64encode(f"{key[0]}|{key[1]}".encode()).decode()


def _decode_token(token: str) -> tuple[int, int]:
    ns, article_id = base64.b64decode(token.encode()).decode().split("|")
    return int(ns), int(article_id)


def _flag(params: dict[str, str], name: str) -> bool:
    return params.get(name, "false").lower() == "true"


class FakeAlpaca:
    """Fake Alpaca news REST + websocket server. Counters are plain ints, read them from tests."""

    def __init__(self, key: str = "fake-key-id", secret: str = "fake-secret-key") -> None:
        self.key = key
        self.secret = secret
        self._lock = threading.Lock()
        self._articles: dict[int, dict[str, Any]] = {}
        self._fail_next: list[int] = []
        self._refusing = False
        self._rest_open = threading.Event()
        self._rest_open.set()
        self._handshakes_open: asyncio.Event | None = None
        self.rest_requests: list[dict[str, str]] = []
        self.rest_stalled = 0  # requests that waited in rest_stall()
        self.refused = 0  # websocket handshakes refused during an outage
        self.stalled_handshakes = 0
        self.connections = 0
        self.auth_attempts = 0
        self.subscriptions = 0
        self._subscribers: dict[ServerConnection, set[str]] = {}
        self._clients: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._ws_server: Server | None = None
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeAlpaca:
        self._threads = [
            threading.Thread(target=self._http.serve_forever, name="fake-alpaca-rest", daemon=True),
            threading.Thread(target=self._loop.run_forever, name="fake-alpaca-ws", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._ws_server = self._call(self._start_ws())
        return self

    def __exit__(self, *exc: object) -> None:
        self._rest_open.set()
        self._call(self._open_handshakes())
        self._call(self._stop_ws())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._loop.close()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def stream_url(self) -> str:
        # alpaca-py uses url_override verbatim as the websocket endpoint, so the real path is spelled out here.
        assert self._ws_server is not None
        return f"ws://127.0.0.1:{self._ws_server.sockets[0].getsockname()[1]}{NEWS_PATH}"

    # --- test controls -------------------------------------------------------------------------
    def add_articles(self, *articles: dict[str, Any]) -> None:
        """Put articles in the REST store only (history, or news published while no client is connected)."""
        with self._lock:
            for article in articles:
                self._articles[int(article["id"])] = article

    def stored(self, article_id: int) -> dict[str, Any]:
        """The REST store's copy of an article (to re-send it, for instance)."""
        with self._lock:
            return dict(self._articles[article_id])

    @property
    def open_connections(self) -> int:
        return len(self._clients)

    def publish(self, article: dict[str, Any]) -> int:
        """Store an article and push it to every matching subscribed client; returns how many got it."""
        self.add_articles(article)
        return self._call(self._broadcast(article))

    def updated(self, article_id: int, at: datetime, **fields: Any) -> dict[str, Any]:
        """A new version of a stored article: same id and created_at, `updated_at` = at, fields changed (publish it)."""
        return {**self.stored(article_id), **fields, "updated_at": iso(at)}

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` REST requests with `status`."""
        with self._lock:
            self._fail_next.extend([status] * count)

    def drop_connections(self) -> None:
        """Abort every client socket without a close handshake, like a network failure."""
        self._call(self._abort_clients())

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Drop all clients and refuse new websocket handshakes (HTTP 503) until the block ends.

        Articles published inside the block reach the REST store only: that is the news a client misses.
        """
        self._refusing = True
        try:
            self.drop_connections()
            yield
        finally:
            self._refusing = False

    @contextlib.contextmanager
    def rest_stall(self) -> Iterator[None]:
        """REST requests made inside the block hang (a server that stopped answering) until the block ends."""
        self._rest_open.clear()
        try:
            yield
        finally:
            self._rest_open.set()

    @contextlib.contextmanager
    def handshake_stall(self) -> Iterator[None]:
        """Drop all clients; new websocket handshakes hang (TCP accepted, no HTTP reply) until the block ends."""
        self._call(self._close_handshakes())
        try:
            self.drop_connections()
            yield
        finally:
            self._call(self._open_handshakes())

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("fake Alpaca: condition not reached in time")
            time.sleep(0.01)

    # --- REST ----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = fake._answer(self.path, self.headers)
                data = json.dumps(body).encode()
                # The client may have gone while a stalled request waited (rest_stall()).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

        return Handler

    def _answer(self, path: str, headers: Any) -> tuple[int, dict[str, Any]]:
        url = urlsplit(path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.rest_requests.append(params)
            failure = self._fail_next.pop(0) if self._fail_next else None
        if not self._rest_open.is_set():
            with self._lock:
                self.rest_stalled += 1
            self._rest_open.wait()
        if failure is not None:
            return failure, {"message": "internal server error"}
        if headers.get("APCA-API-KEY-ID") != self.key or headers.get("APCA-API-SECRET-KEY") != self.secret:
            return HTTPStatus.UNAUTHORIZED, {"message": "unauthorized."}
        if url.path != NEWS_PATH:
            return HTTPStatus.NOT_FOUND, {"message": "not found"}
        try:
            return HTTPStatus.OK, self._news_page(params)
        except (ValueError, KeyError) as exc:
            return HTTPStatus.BAD_REQUEST, {"message": f"invalid request: {exc}"}

    def _news_page(self, params: dict[str, str]) -> dict[str, Any]:
        # `start` and `end` are both inclusive and filter on created_at; the order and the token follow updated_at.
        now = datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = parse_ts(params["start"]) if "start" in params else today
        end = parse_ts(params["end"]) if "end" in params else now
        symbols = {s.strip().upper() for s in params.get("symbols", "").split(",") if s.strip()}
        limit = int(params.get("limit", DEFAULT_LIMIT))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        sort = params.get("sort", "desc").lower()
        if sort not in ("asc", "desc"):
            raise ValueError("sort must be asc or desc")
        descending = sort == "desc"
        with self._lock:
            articles = list(self._articles.values())
        selected = [
            a
            for a in articles
            if start <= parse_ts(a["created_at"]) <= end
            and (not symbols or symbols & set(a["symbols"]))
            and (a["content"] or not _flag(params, "exclude_contentless"))
        ]
        selected.sort(key=_sort_key, reverse=descending)
        if params.get("page_token"):
            after = _decode_token(params["page_token"])
            selected = [a for a in selected if (_sort_key(a) < after if descending else _sort_key(a) > after)]
        page = selected[:limit]
        more = len(selected) > limit
        if not _flag(params, "include_content"):
            page = [{**a, "content": ""} for a in page]
        return {"news": page, "next_page_token": _encode_token(_sort_key(page[-1])) if more else None}

    # --- websocket -----------------------------------------------------------------------------
    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _start_ws(self) -> Server:
        return await serve(self._serve_client, "127.0.0.1", 0, process_request=self._gate)

    async def _stop_ws(self) -> None:
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()

    async def _gate(self, connection: ServerConnection, request: Any) -> Any:
        if self._handshakes_open is not None and not self._handshakes_open.is_set():
            self.stalled_handshakes += 1
            await self._handshakes_open.wait()
        if self._refusing:
            self.refused += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "outage\n")
        return None

    async def _close_handshakes(self) -> None:
        self._handshakes_open = asyncio.Event()

    async def _open_handshakes(self) -> None:
        if self._handshakes_open is not None:
            self._handshakes_open.set()

    async def _serve_client(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._clients.add(ws)
        try:
            await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
            auth = msgpack.unpackb(await ws.recv())
            self.auth_attempts += 1
            if auth.get("action") != "auth" or (auth.get("key"), auth.get("secret")) != (self.key, self.secret):
                await ws.send(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
                return
            await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
            async for frame in ws:
                message = msgpack.unpackb(frame)
                if message.get("action") == "subscribe":
                    symbols = list(message.get("news", []))
                    self._subscribers[ws] = set(symbols)
                    self.subscriptions += 1
                    await ws.send(msgpack.packb([{"T": "subscription", "news": symbols}]))
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(ws)
            self._subscribers.pop(ws, None)

    async def _broadcast(self, article: dict[str, Any]) -> int:
        frame = msgpack.packb([_wire_news(article)])
        sent = 0
        for ws, symbols in list(self._subscribers.items()):
            if "*" in symbols or symbols & set(article["symbols"]):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(frame)
                    sent += 1
        return sent

    async def _abort_clients(self) -> None:
        for ws in list(self._clients):
            ws.transport.abort()
        self._subscribers.clear()


def _wire_news(article: dict[str, Any]) -> dict[str, Any]:
    """A REST article as the websocket sends it: `T: n`, timestamps as msgpack Timestamps, no images."""
    wire = {k: v for k, v in article.items() if k != "images"}
    wire["T"] = "n"
    for name in ("created_at", "updated_at"):
        wire[name] = msgpack.Timestamp.from_datetime(parse_ts(article[name]))
    return wire
