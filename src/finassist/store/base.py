"""The feature-store port: what the pipelines need from a vector store, whatever engine sits behind it."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from finassist.domain import EmbeddedArticle, Hit, point_id

PAYLOAD_INDEXES = {
    "article_id": "keyword",
    "symbols": "keyword",
    "created_at": "float",
    "updated_at": "float",
    "chunk_index": "integer",
}


class StoreError(RuntimeError):
    """A store problem a user can act on (message says what to do)."""


class StoreBusyError(StoreError):
    pass


@dataclass(frozen=True)
class SearchFilter:
    """Engine-neutral filter: any of `symbols`, created_at in [since, until)."""

    symbols: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class StoredPoint:
    id: str
    vector: Sequence[float]
    payload: dict[str, Any]


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)  # article ids whose chunks were (re)written
    unchanged: list[str] = field(default_factory=list)  # same version already stored
    stale: list[str] = field(default_factory=list)  # an older version than the stored one: ignored
    points: int = 0


def chunk_payload(item: EmbeddedArticle, index: int, text: str) -> dict[str, Any]:
    a = item.article
    return {
        "article_id": a.id,
        "headline": item.clean.headline,
        "summary": item.clean.summary,
        "url": a.url,
        "author": a.author,
        "source": a.source,
        "symbols": list(a.symbols),
        "created_at": a.created_at.timestamp(),
        "updated_at": a.version,
        "chunk_index": index,
        "n_chunks": len(item.chunks),
        "text": text,
    }


def select_fresh(
    items: Iterable[EmbeddedArticle], stored: dict[str, float]
) -> tuple[list[EmbeddedArticle], list[str], list[str]]:
    """Decide per article: write it (new or newer), skip it (same version), or ignore it (older than stored).

    Within one batch the newest version of an article wins, whatever the arrival order.
    """
    newest: dict[str, EmbeddedArticle] = {}
    stale: list[str] = []
    for item in items:
        prev = newest.get(item.article.id)
        if prev is None or item.article.version > prev.article.version:
            if prev is not None:
                stale.append(prev.article.id)
            newest[item.article.id] = item
        else:
            stale.append(item.article.id)
    fresh, unchanged = [], []
    for aid, item in newest.items():
        have = stored.get(aid)
        if have is None or item.article.version > have:
            fresh.append(item)
        elif item.article.version == have:
            unchanged.append(aid)
        else:
            stale.append(aid)
    return fresh, unchanged, stale


def payload_to_hit(score: float, payload: dict[str, Any]) -> Hit:
    return Hit(
        article_id=str(payload["article_id"]),
        headline=payload.get("headline", ""),
        score=float(score),
        created_at=datetime.fromtimestamp(payload["created_at"], UTC),
        updated_at=datetime.fromtimestamp(payload["updated_at"], UTC),
        symbols=list(payload.get("symbols", [])),
        text=payload.get("text", ""),
        chunk_index=int(payload.get("chunk_index", 0)),
        url=payload.get("url", ""),
        summary=payload.get("summary", ""),
        source=payload.get("source", ""),
        author=payload.get("author", ""),
    )


class VectorStore(ABC):
    """One collection of chunk points. Subclasses implement the engine primitives; versioning logic lives here."""

    kind: str = "abstract"

    def __init__(self) -> None:
        self._write_lock = threading.Lock()

    # --- engine primitives ---------------------------------------------------------------------
    @abstractmethod
    def ensure(self, dim: int) -> None:
        """Create the collection (vectors of `dim`, cosine) and payload indexes if missing; check `dim` if not."""

    @abstractmethod
    def _versions(self, article_ids: Sequence[str]) -> dict[str, float]:
        """Stored `updated_at` of each article that has points (read from its chunk 0)."""

    @abstractmethod
    def _upsert(self, points: Sequence[StoredPoint]) -> None: ...

    @abstractmethod
    def _delete_tails(self, n_chunks: dict[str, int]) -> None:
        """Delete, per article, every point with chunk_index >= n (left over from a longer older version)."""

    @abstractmethod
    def search(self, vector: Sequence[float], limit: int, flt: SearchFilter | None = None) -> list[Hit]: ...

    @abstractmethod
    def count(self, articles: bool = False) -> int:
        """Points in the collection, or articles (points with chunk_index 0)."""

    @abstractmethod
    def dim(self) -> int | None:
        """Vector size of the collection, None if it does not exist yet."""

    def flush(self) -> None:  # noqa: B027 (a no-op where the engine makes writes durable itself)
        """Make every acknowledged write durable."""

    def close(self) -> None:  # noqa: B027
        """Release files and connections."""

    @abstractmethod
    def drop(self) -> None:
        """Delete the collection and everything in it."""

    # --- shared logic --------------------------------------------------------------------------
    def versions(self, article_ids: Sequence[str]) -> dict[str, float]:
        return self._versions(list(dict.fromkeys(article_ids))) if article_ids else {}

    def write(self, items: Sequence[EmbeddedArticle]) -> WriteResult:
        """Write articles: a newer version replaces all old chunks; the same or an older version changes nothing.

        New points are upserted before left-over chunks are deleted, so a reader never sees an article vanish.
        """
        if not items:
            return WriteResult()
        with self._write_lock:
            self.ensure(len(items[0].vectors[0]))
            fresh, unchanged, stale = select_fresh(items, self.versions([i.article.id for i in items]))
            points = [
                StoredPoint(point_id(item.article.id, c.index), vec, chunk_payload(item, c.index, c.text))
                for item in fresh
                for c, vec in zip(item.chunks, item.vectors, strict=True)
            ]
            if points:
                self._upsert(points)
                self._delete_tails({item.article.id: len(item.chunks) for item in fresh})
        return WriteResult([i.article.id for i in fresh], unchanged, stale, len(points))
