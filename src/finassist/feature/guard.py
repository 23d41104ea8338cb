"""Per-record isolation: whatever one record does to a step (an exception, a stall), only that record is quarantined.

The dataflow never dies on data: a bad line used to stop ingestion for good, because every rerun resumed just
before it and crashed again. Steps are wrapped here rather than each transform catching its own errors, so a new
failure mode (a library raising something unexpected) is covered too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from finassist.domain import ChunkedArticle, CleanArticle, NewsArticle, Quarantined, RawRecord

RAW_KEEP_CHARS = 2_000  # how much of a bad record the quarantine file keeps
REASON_KEEP_CHARS = 500


class BudgetExceeded(Exception):
    """A record took longer than its processing budget in one step."""


class Budget:
    """A per-record, per-step time budget that cooperative loops check (cheaply) as they go."""

    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self, step: str) -> None:
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"processing budget exceeded: {step} took over {self.seconds:g} s")


def excerpt(payload: Any) -> str:
    """A printable, UTF-8-safe excerpt of a bad record for the quarantine file; never raises."""
    try:
        if isinstance(payload, bytes):
            text = payload[:RAW_KEEP_CHARS].decode("utf-8", errors="backslashreplace")
        elif isinstance(payload, str):
            text = payload[:RAW_KEEP_CHARS]
        elif isinstance(payload, NewsArticle):
            text = payload.model_dump_json()[:RAW_KEEP_CHARS]
        else:
            text = json.dumps(payload, default=str, ensure_ascii=False)[:RAW_KEEP_CHARS]
    except (RecursionError, ValueError, TypeError, OverflowError) as e:
        text = f"<{type(payload).__name__} that cannot be printed: {type(e).__name__}>"
    return _utf8_safe(text).rstrip("\r\n")


def _utf8_safe(text: str) -> str:
    # Lone surrogates would make the quarantine file itself unwritable as UTF-8.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe_error(error: BaseException) -> str:
    message = str(error).splitlines()[0] if str(error) else ""
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return _utf8_safe(text[:REASON_KEEP_CHARS])


def origin_of(item: Any) -> str:
    if isinstance(item, RawRecord):
        return item.origin
    if isinstance(item, NewsArticle):
        return f"article:{item.id}"
    if isinstance(item, CleanArticle):
        return f"article:{item.article.id}"
    if isinstance(item, ChunkedArticle):
        return f"article:{item.clean.article.id}"
    article = getattr(item, "article", None)
    return f"article:{article.id}" if isinstance(article, NewsArticle) else type(item).__name__


def _raw_of(item: Any) -> Any:
    if isinstance(item, RawRecord):
        return item.payload
    if isinstance(item, CleanArticle | ChunkedArticle):
        return item.article if isinstance(item, CleanArticle) else item.clean.article
    return item


def quarantine(item: Any, step: str, reason: str) -> Quarantined:
    return Quarantined(origin=origin_of(item), step=step, reason=reason, raw=excerpt(_raw_of(item)))


def isolate(step: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A per-record step that turns any exception raised on a record into that record's quarantine."""

    def guarded(item: Any) -> Any:
        try:
            return fn(item)
        except Exception as e:  # any failure on one record, by design: the record is kept with the reason
            return quarantine(item, step, describe_error(e))

    return guarded


def isolate_batch(step: str, fn: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], list[Any]]:
    """A batch step (one tokenizer or encoder call for many records). If the batch fails, each record is retried
    alone and only the records that fail by themselves are quarantined. When every record of a larger batch fails
    alone too, the fault is not in the data (a broken model, no memory): that error is raised, so the run stops and
    resumes later instead of quarantining good news."""

    def guarded(batch: list[Any]) -> list[Any]:
        try:
            return fn(batch)
        except Exception as batch_error:
            out, failed = [], 0
            for item in batch:
                try:
                    out.extend(fn([item]))
                except Exception as e:  # this record alone fails: it is the bad one
                    failed += 1
                    out.append(quarantine(item, step, describe_error(e)))
            if failed == len(batch) > 1:
                raise batch_error
            return out

    return guarded
