"""Alpaca news: the REST client plumbing shared by both sources, and the historical backfill split into time slices.

Both drive alpaca-py's own clients (`NewsClient`, `NewsDataStream`); this module adds paging one page per batch,
resume state, retries, and the stream's gap backfill after a reconnect.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.news import NewsClient
from alpaca.data.models.news import News, NewsSet
from alpaca.data.requests import NewsRequest
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from finassist.config import Settings
from finassist.domain import RawRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

HTTP_TIMEOUT_S = 30.0
RETRY_CAP_S = 30.0
CHECK_KEYS = "check ALPACA_API_KEY / ALPACA_API_SECRET"


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


def utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return utc(ts).isoformat().replace("+00:00", "Z")


def normalise_symbols(symbols: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip().upper() for s in symbols or () if s.strip()))


# --- REST paging -----------------------------------------------------------------------------------------------


class _TimeoutSession(requests.Session):
    """alpaca-py's RESTClient sends requests without a timeout; a stalled socket would hang a worker forever."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return super().request(*args, **kwargs)


def news_client(settings: Settings) -> NewsClient:
    key, secret = alpaca_credentials(settings)
    client = NewsClient(key, secret, url_override=settings.alpaca_data_url)
    client._session = _TimeoutSession()
    return client


@dataclass
class NewsPager:
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
        raise AlpacaAuthError(f"Alpaca rejected the API credentials (HTTP {status}); {CHECK_KEYS}") from None
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
    def __init__(self, pager: NewsPager, start: datetime, end: datetime, cursor: BackfillCursor):
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
            if self._start <= utc(news.created_at) < self._end
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
        self._symbols = normalise_symbols(symbols)
        self._retry = (retry_attempts, retry_base_s)
        ranges = split_range(utc(start), utc(end), slices)
        # The key names the range too, so a resume after changing --start/--end starts fresh instead of mis-resuming.
        self._slices = {f"{i:03d}:{s.isoformat()}/{e.isoformat()}": (s, e) for i, (s, e) in enumerate(ranges)}

    def list_parts(self) -> list[str]:
        return list(self._slices)

    def build_part(self, step_id: str, for_part: str, resume_state: BackfillCursor | None) -> _BackfillPartition:
        start, end = self._slices[for_part]
        pager = NewsPager(news_client(self._settings), self._symbols, self._settings.alpaca_page_limit, *self._retry)
        return _BackfillPartition(pager, start, end, resume_state or BackfillCursor())
