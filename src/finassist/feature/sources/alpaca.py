"""Alpaca news sources: a historical backfill split into time slices, and the live websocket stream.

Both drive alpaca-py's own clients (`NewsClient`, `NewsDataStream`); this module adds paging one page per batch,
resume state, retries, and the stream's gap backfill after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.news import NewsClient
from alpaca.data.live.news import NewsDataStream
from alpaca.data.models.news import News, NewsSet
from alpaca.data.requests import NewsRequest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from finassist.config import Settings
from finassist.domain import RawRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

HTTP_TIMEOUT_S = 30.0
RETRY_CAP_S = 30.0
STREAM_POLL = timedelta(milliseconds=50)
# alpaca-py's default ping_timeout is 180 s: a link that dies without a FIN would go unnoticed for 3 minutes.
STREAM_WEBSOCKET_PARAMS = {"ping_interval": 10, "ping_timeout": 20, "max_queue": 1024}
# Dedup keys older than the resume watermark minus this horizon can no longer come back from a gap backfill.
DEDUP_HORIZON = timedelta(hours=1)
DEDUP_PRUNE_AT = 50_000
_CHECK_KEYS = "check ALPACA_API_KEY / ALPACA_API_SECRET"


class AlpacaCredentialsError(ValueError):
    """Alpaca credentials are not configured."""


class AlpacaAuthError(PermissionError):
    """Alpaca rejected the configured credentials."""


class AlpacaRequestError(RuntimeError):
    """An Alpaca request failed for good (a non-retryable answer, or transient failures past the retry budget)."""


class AlpacaStreamError(RuntimeError):
    """The news websocket stopped for a reason that retrying cannot fix."""


def alpaca_credentials(settings: Settings) -> tuple[str, str]:
    """The API key id and secret from settings; the error names the env vars, never the values."""
    key = settings.alpaca_api_key.get_secret_value() if settings.alpaca_api_key else ""
    secret = settings.alpaca_api_secret.get_secret_value() if settings.alpaca_api_secret else ""
    missing = [name for name, value in (("ALPACA_API_KEY", key), ("ALPACA_API_SECRET", secret)) if not value]
    if missing:
        raise AlpacaCredentialsError(
            f"Alpaca credentials missing: set {' and '.join(missing)} (or the FINASSIST_-prefixed names)"
        )
    return key, secret


def split_range(start: datetime, end: datetime, n: int) -> list[tuple[datetime, datetime]]:
    """Split [start, end) into n contiguous half-open slices: each slice ends exactly where the next one starts."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if end <= start:
        raise ValueError("end must be after start")
    span = end - start
    # timedelta // int works in whole microseconds, so the borders are exact and the last one is `end` itself.
    borders = [start + span * i // n for i in range(n)] + [end]
    return list(itertools.pairwise(borders))


def news_to_payload(news: News) -> dict[str, Any]:
    """alpaca-py's `News` model back into Alpaca's JSON schema (what `NewsArticle` validates)."""
    return {
        "id": news.id,
        "headline": news.headline,
        "summary": news.summary,
        "author": news.author,
        "content": news.content,
        "url": news.url,
        "symbols": list(news.symbols),
        "source": news.source,
        "created_at": _iso(news.created_at),
        "updated_at": _iso(news.updated_at),
    }


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return _utc(ts).isoformat().replace("+00:00", "Z")


def _normalise_symbols(symbols: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip().upper() for s in symbols or () if s.strip()))


# --- REST paging -----------------------------------------------------------------------------------------------


class _TimeoutSession(requests.Session):
    """alpaca-py's RESTClient sends requests without a timeout; a stalled socket would hang a worker forever."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return super().request(*args, **kwargs)


def _news_client(settings: Settings) -> NewsClient:
    key, secret = alpaca_credentials(settings)
    client = NewsClient(key, secret, url_override=settings.alpaca_data_url)
    client._session = _TimeoutSession()
    return client


@dataclass
class _NewsPager:
    """Fetches historical news one page at a time, retrying transient failures with exponential backoff."""

    client: NewsClient
    symbols: tuple[str, ...]
    page_limit: int
    retry_attempts: int = 5
    retry_base_s: float = 0.5
    stopped: threading.Event = field(default_factory=threading.Event)

    def fetch(self, start: datetime, end: datetime | None, page_token: str | None) -> NewsSet:
        request = NewsRequest(
            start=start,
            end=end,
            sort="asc",
            symbols=",".join(self.symbols) or None,
            limit=self.page_limit,
            include_content=True,
            page_token=page_token,
        )
        # NewsClient.get_news() follows next_page_token itself until `limit` articles are in and then drops the
        # token (its NewsSet.next_page_token is always None), so it cannot hand out one page at a time. The client's
        # own get() sends the same request (auth headers, url_override, 429 retries) and returns the raw page with
        # its token, which NewsSet parses into the same `News` models.
        return self._with_retries(lambda: NewsSet(self.client.get("/news", request.to_request_fields())))

    def pages(self, start: datetime, end: datetime | None) -> Iterator[list[News]]:
        token: str | None = None
        while True:
            page = self.fetch(start, end, token)
            yield page.data.get("news", [])
            if page.next_page_token is None:
                return
            token = _next_token(token, page.next_page_token)

    def _with_retries(self, call: Callable[[], T]) -> T:
        problem = ""
        for attempt in range(1, self.retry_attempts + 1):
            try:
                return call()
            except APIError as exc:
                problem = _classify_api_error(exc)
            except requests.RequestException as exc:  # refused, reset, timed out: the server may come back
                problem = type(exc).__name__
            if attempt < self.retry_attempts:
                delay = min(self.retry_base_s * 2 ** (attempt - 1), RETRY_CAP_S)
                log.warning(
                    "Alpaca news request failed (%s); retry %d/%d in %.2fs",
                    problem,
                    attempt,
                    self.retry_attempts - 1,
                    delay,
                )
                if self.stopped.wait(delay):
                    break
        raise AlpacaRequestError(f"Alpaca news request failed after {self.retry_attempts} attempts ({problem})")

    def close(self) -> None:
        self.stopped.set()
        self.client._session.close()


def _classify_api_error(exc: APIError) -> str:
    """Raise for answers that retrying cannot fix; return a short description of a transient one."""
    status = exc.status_code
    if status in (401, 403):
        # `from None`: the chained APIError carries the request, whose headers hold the key and secret.
        raise AlpacaAuthError(f"Alpaca rejected the API credentials (HTTP {status}); {_CHECK_KEYS}") from None
    if status is None or (status < 500 and status != 429):
        raise AlpacaRequestError(f"Alpaca news request rejected (HTTP {status}): {str(exc)[:300]}") from None
    return f"HTTP {status}"


def _next_token(current: str | None, following: str) -> str:
    if following == current:
        raise AlpacaRequestError("Alpaca returned the same page token twice; stopping instead of looping")
    return following


# --- backfill --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillCursor:
    """Resume state of one time slice: the token of the next page to fetch; `done` once the last page was emitted.

    Alpaca's page tokens are cursors into the sorted result (not offsets), so one saved after an emitted page
    continues right after it.
    """

    page_token: str | None = None
    done: bool = False


class _BackfillPartition(StatefulSourcePartition[RawRecord, BackfillCursor]):
    def __init__(self, pager: _NewsPager, start: datetime, end: datetime, cursor: BackfillCursor):
        self._pager = pager
        self._start = start
        self._end = end
        self._cursor = cursor

    def next_batch(self) -> list[RawRecord]:
        if self._cursor.done:
            raise StopIteration
        page = self._pager.fetch(self._start, self._end, self._cursor.page_token)
        token = page.next_page_token
        if token is not None:
            token = _next_token(self._cursor.page_token, token)
        self._cursor = BackfillCursor(page_token=token, done=token is None)
        # The API's `end` is inclusive: an article exactly on a border belongs to the slice that starts there.
        return [
            RawRecord(origin="alpaca-rest", payload=news_to_payload(news))
            for news in page.data.get("news", [])
            if self._start <= _utc(news.created_at) < self._end
        ]

    def snapshot(self) -> BackfillCursor:
        return self._cursor

    def close(self) -> None:
        self._pager.close()


class AlpacaBackfillSource(FixedPartitionedSource[RawRecord, BackfillCursor]):
    """Historical news in [start, end), one partition per time slice, one REST page per batch."""

    def __init__(
        self,
        settings: Settings,
        start: datetime,
        end: datetime,
        symbols: Sequence[str] | None = None,
        slices: int = 1,
        *,
        retry_attempts: int = 5,
        retry_base_s: float = 0.5,
    ):
        alpaca_credentials(settings)  # fail when the flow is built, not inside a worker
        self._settings = settings
        self._symbols = _normalise_symbols(symbols)
        self._retry = (retry_attempts, retry_base_s)
        ranges = split_range(_utc(start), _utc(end), slices)
        # The key names the range too, so a resume after changing --start/--end starts fresh instead of mis-resuming.
        self._slices = {f"{i:03d}:{s.isoformat()}/{e.isoformat()}": (s, e) for i, (s, e) in enumerate(ranges)}

    def list_parts(self) -> list[str]:
        return list(self._slices)

    def build_part(self, step_id: str, for_part: str, resume_state: BackfillCursor | None) -> _BackfillPartition:
        start, end = self._slices[for_part]
        pager = _NewsPager(_news_client(self._settings), self._symbols, self._settings.alpaca_page_limit, *self._retry)
        return _BackfillPartition(pager, start, end, resume_state or BackfillCursor())


# --- live stream -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamWatermark:
    """Resume state of the stream: the newest `updated_at` emitted and the ids emitted at exactly that instant.

    On resume, news created since `updated_at` is fetched again over REST; the listed ids are not re-emitted.
    """

    updated_at: datetime | None = None
    ids: frozenset[str] = frozenset()

    def advanced(self, article_id: str, updated_at: datetime) -> StreamWatermark:
        if self.updated_at is None or updated_at > self.updated_at:
            return StreamWatermark(updated_at, frozenset({article_id}))
        if updated_at == self.updated_at:
            return StreamWatermark(updated_at, self.ids | {article_id})
        return self


@dataclass(frozen=True, slots=True)
class _Article:
    news: News
    origin: str


@dataclass(frozen=True, slots=True)
class _Subscribed:
    """The server acknowledged our subscription at `at`: a (re)connection is complete and live news flows again."""

    at: datetime


@dataclass(frozen=True, slots=True)
class _GapFilled:
    job: int


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


_Event = _Article | _Subscribed | _GapFilled | _Failed


class _ObservedNewsStream(NewsDataStream):
    """NewsDataStream that reports (re)subscriptions and fatal errors to a queue.

    alpaca-py reconnects by itself (`_run_forever` retries with jittered exponential backoff) but tells nobody, and
    it retries a rejected login forever. These two hooks are the only places that see both events.
    """

    def __init__(
        self,
        key: str,
        secret: str,
        url: str | None,
        events: queue.SimpleQueue[_Event],
        min_backoff_s: float,
        max_backoff_s: float,
    ):
        super().__init__(key, secret, url_override=url, websocket_params=dict(STREAM_WEBSOCKET_PARAMS))
        self._events = events
        self._reconnect_min_backoff = min(min_backoff_s, max_backoff_s)
        self._reconnect_max_backoff = max_backoff_s

    async def _auth(self) -> None:
        try:
            await super()._auth()
        except ValueError as exc:
            # The server answers bad keys with [{"T": "error", "code": 402, "msg": "auth failed"}]; other auth-time
            # errors (406 connection limit, 404 auth timeout) are worth alpaca-py's retry.
            if str(exc).lower() == "auth failed":
                error = AlpacaAuthError(f"Alpaca news stream rejected the API credentials (auth failed); {_CHECK_KEYS}")
                self._events.put(_Failed(error))
                await self.stop_ws()
            raise

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("T")
        if kind == "subscription":
            self._events.put(_Subscribed(datetime.now(UTC)))
        elif kind == "error" and msg.get("code") in (405, 409):  # symbol limit / insufficient subscription
            self._events.put(_Failed(AlpacaStreamError(f"Alpaca news stream: {msg.get('msg')} ({msg.get('code')})")))
            await self.stop_ws()
        await super()._dispatch(msg)

    async def shutdown(self) -> None:
        await self.stop_ws()
        # Closing the socket wakes the pending recv() at once; stop_ws alone is only seen after its 5 s timeout.
        await self.close()


class _StreamPartition(StatefulSourcePartition[RawRecord, StreamWatermark]):
    def __init__(
        self,
        settings: Settings,
        symbols: tuple[str, ...],
        resume: StreamWatermark | None,
        min_backoff_s: float,
        retry: tuple[int, float],
    ):
        key, secret = alpaca_credentials(settings)
        self._batch_size = settings.batch_articles
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._mark = resume or StreamWatermark()
        self._seen: dict[tuple[str, datetime], None] = dict.fromkeys((i, self._mark.updated_at) for i in self._mark.ids)
        self._gaps: dict[int, StreamWatermark] = {}  # pending gap backfills and the watermark each starts from
        self._job_ids = itertools.count()
        self._closed = False
        self._pager = _NewsPager(_news_client(settings), symbols, settings.alpaca_page_limit, *retry)
        # Gap backfills run one at a time on daemon threads: an interrupted process must not wait for their retries.
        self._gap_lock = threading.Lock()
        self._stream = _ObservedNewsStream(
            key, secret, settings.alpaca_stream_url, self._events, min_backoff_s, settings.stream_max_backoff_s
        )
        self._stream.subscribe_news(self._on_news, *(symbols or ("*",)))
        self._thread = threading.Thread(target=self._stream.run, name="alpaca-news-stream", daemon=True)
        self._thread.start()

    async def _on_news(self, news: News) -> None:
        self._events.put(_Article(news, "alpaca-stream"))

    def next_batch(self) -> list[RawRecord]:
        batch: list[RawRecord] = []
        while len(batch) < self._batch_size:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            record = self._handle(event)
            if record is not None:
                batch.append(record)
        if not batch and not self._thread.is_alive() and self._events.empty():
            raise AlpacaStreamError("Alpaca news stream stopped unexpectedly")
        if len(self._seen) > DEDUP_PRUNE_AT:
            self._prune_seen()
        return batch

    def next_awake(self) -> datetime | None:
        return None if not self._events.empty() else datetime.now(UTC) + STREAM_POLL

    def _handle(self, event: _Event) -> RawRecord | None:
        match event:
            case _Article(news, origin):
                return self._accept(news, origin)
            case _Subscribed(at):
                self._on_subscribed(at)
            case _GapFilled(job):
                self._gaps.pop(job, None)
            case _Failed(error):
                raise error
        return None

    def _accept(self, news: News, origin: str) -> RawRecord | None:
        # The same article can arrive twice: from a gap backfill and live, or live once per subscribed symbol it
        # mentions (alpaca-py calls the handler for each). A new `updated_at` is a new version and passes.
        key = (str(news.id), _utc(news.updated_at))
        if key in self._seen:
            return None
        self._seen[key] = None
        self._mark = self._mark.advanced(*key)
        return RawRecord(origin=origin, payload=news_to_payload(news))

    def _on_subscribed(self, at: datetime) -> None:
        if self._mark.updated_at is None:
            # First connection of a fresh stream: nothing missed yet, but a later outage needs a lower bound. News
            # after the ack arrives live, and is queued behind this event, so it can only move the mark up.
            self._mark = StreamWatermark(at)
            return
        # Reconnected, or resumed from a snapshot: the subscription is live again, so REST covers everything since
        # the watermark up to now and the stream everything after; duplicates in the overlap are dropped.
        job = next(self._job_ids)
        self._gaps[job] = self._mark
        threading.Thread(
            target=self._fill_gap, args=(job, self._mark.updated_at), name="alpaca-news-gap", daemon=True
        ).start()

    def _fill_gap(self, job: int, since: datetime) -> None:
        with self._gap_lock:
            self._fill_gap_locked(job, since)

    def _fill_gap_locked(self, job: int, since: datetime) -> None:
        try:
            for page in self._pager.pages(since, None):  # no `end`: the API defaults it to its own "now"
                if self._pager.stopped.is_set():
                    return
                for news in page:
                    self._events.put(_Article(news, "alpaca-rest"))
            self._events.put(_GapFilled(job))
        except Exception as exc:  # handed to next_batch, which raises it in the dataflow
            self._events.put(_Failed(exc))

    def snapshot(self) -> StreamWatermark:
        # While a gap backfill is running the watermark may have moved past news it has not delivered yet.
        return self._gaps[min(self._gaps)] if self._gaps else self._mark

    def _prune_seen(self) -> None:
        floor = self.snapshot().updated_at
        if floor is not None:
            self._seen = {k: None for k in self._seen if k[1] >= floor - DEDUP_HORIZON}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + 5
        while self._thread.is_alive() and time.monotonic() < deadline:
            loop = self._stream._loop
            if loop is not None and loop.is_running():
                # The loop may be closing under us; the join below tells whether the thread is done.
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(self._stream.shutdown(), loop).result(timeout=1)
            self._thread.join(timeout=0.05)
        self._pager.close()


class AlpacaStreamSource(FixedPartitionedSource[RawRecord, StreamWatermark]):
    """Live news from Alpaca's websocket (one partition); gaps after reconnects or restarts are refilled over REST."""

    PART = "alpaca-news-stream"

    def __init__(
        self,
        settings: Settings,
        symbols: Sequence[str] | None = None,
        *,
        reconnect_min_backoff_s: float = 1.0,
        retry_attempts: int = 5,
        retry_base_s: float = 0.5,
    ):
        alpaca_credentials(settings)
        self._settings = settings
        self._symbols = _normalise_symbols(symbols)
        self._min_backoff_s = reconnect_min_backoff_s
        self._retry = (retry_attempts, retry_base_s)
        self._parts: list[_StreamPartition] = []

    def list_parts(self) -> list[str]:
        return [self.PART]

    def build_part(self, step_id: str, for_part: str, resume_state: StreamWatermark | None) -> _StreamPartition:
        part = _StreamPartition(self._settings, self._symbols, resume_state, self._min_backoff_s, self._retry)
        self._parts.append(part)
        return part

    def close(self) -> None:
        """Stop every partition built by this source (bytewax only closes partitions of finished dataflows)."""
        for part in self._parts:
            part.close()
