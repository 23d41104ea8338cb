"""Alpaca live news: the websocket stream, with reconnects and a REST backfill of every gap (see alpaca.py for the
shared REST plumbing)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alpaca.data.live.news import NewsDataStream
from alpaca.data.models.news import News
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from finassist.config import Settings
from finassist.domain import RawRecord
from finassist.feature.sources.alpaca import (
    CHECK_KEYS,
    AlpacaAuthError,
    AlpacaStreamError,
    NewsPager,
    alpaca_credentials,
    news_client,
    news_to_payload,
    normalise_symbols,
    utc,
)

log = logging.getLogger(__name__)

STREAM_POLL = timedelta(milliseconds=50)
# alpaca-py's default ping_timeout is 180 s: a link that dies without a FIN would go unnoticed for 3 minutes.
STREAM_WEBSOCKET_PARAMS = {"ping_interval": 10, "ping_timeout": 20, "max_queue": 1024}
DEDUP_PRUNE_AT = 50_000
# How long close() waits for the websocket thread; shutdown() cancels whatever it is awaiting, so this is a backstop.
STREAM_STOP_TIMEOUT_S = 5.0
# The websocket close handshake gets this long before the socket is dropped.
STREAM_CLOSE_GRACE_S = 1.0

# --- live stream -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamWatermark:
    """Resume state of the stream: the newest `updated_at` emitted and the ids emitted at exactly that instant.

    On resume, news created since `updated_at` minus the catch-up overlap is fetched again over REST (the REST API
    filters on created_at only). The listed ids are not re-emitted; other versions emitted before the snapshot are,
    and the store's version check drops them.
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
                error = AlpacaAuthError(f"Alpaca news stream rejected the API credentials (auth failed); {CHECK_KEYS}")
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
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.close(), STREAM_CLOSE_GRACE_S)
        # A connect or login in progress never looks at the stop flags (the opening handshake may take up to its
        # 10 s open_timeout, the "connected" reply has no timeout at all): cancel whatever the loop still awaits.
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def run(self) -> None:
        # A run_forever cancelled by shutdown() ends asyncio.run with CancelledError: that is the stop we asked for.
        with contextlib.suppress(asyncio.CancelledError):
            super().run()


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
        self._overlap = timedelta(seconds=settings.stream_catchup_overlap_s)
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._mark = resume or StreamWatermark()
        self._seen: dict[tuple[str, datetime], None] = dict.fromkeys((i, self._mark.updated_at) for i in self._mark.ids)
        self._gaps: dict[int, StreamWatermark] = {}  # pending gap backfills and the watermark each starts from
        self._job_ids = itertools.count()
        self._closed = False
        self._pager = NewsPager(news_client(settings), symbols, settings.alpaca_page_limit, *retry)
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
        key = (str(news.id), utc(news.updated_at))
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
            log.info("Alpaca news stream subscribed at %s (first connection: no gap to backfill)", at.isoformat())
            return
        # Reconnected, or resumed from a snapshot: the subscription is live again, so REST covers the gap up to now
        # and the stream everything after. REST filters on created_at, but what the gap hid is any version *updated*
        # in it: late-stamped news (created before the last event seen, published after) and updates to older
        # articles. So the backfill starts the catch-up overlap before the watermark; (id, updated_at) dedup drops
        # what was already emitted.
        job = next(self._job_ids)
        self._gaps[job] = self._mark
        since = self._mark.updated_at - self._overlap
        log.info("Alpaca news stream subscribed at %s; backfilling news since %s over REST", at.isoformat(),
                 since.isoformat())
        threading.Thread(target=self._fill_gap, args=(job, since), name="alpaca-news-gap", daemon=True).start()

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
        # A gap backfill returns articles created (so also updated) at or after its watermark minus the overlap:
        # older keys can no longer come back.
        floor = self.snapshot().updated_at
        if floor is not None:
            self._seen = {k: None for k in self._seen if k[1] >= floor - self._overlap}

    def close(self) -> None:
        """Stop the websocket thread and any gap backfill; bounded, whatever the stream is doing (Ctrl-C lands here)."""
        if self._closed:
            return
        self._closed = True
        self._pager.close()  # wakes a gap backfill's retry sleep; it stops before its next page
        deadline = time.monotonic() + STREAM_STOP_TIMEOUT_S
        asked_at = -1.0
        while self._thread.is_alive() and time.monotonic() < deadline:
            loop = self._stream._loop
            # Ask again now and then: a request sent while the loop was still starting may be lost.
            if loop is not None and loop.is_running() and time.monotonic() - asked_at > 0.5:
                with contextlib.suppress(RuntimeError):  # the loop closed under us: the join tells
                    asyncio.run_coroutine_threadsafe(self._stream.shutdown(), loop)
                    asked_at = time.monotonic()
            self._thread.join(timeout=0.02)
        if self._thread.is_alive():
            log.warning("Alpaca news stream thread still running %.0f s after close; leaving it", STREAM_STOP_TIMEOUT_S)


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
        self._symbols = normalise_symbols(symbols)
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
