"""The feature-store port: what the pipelines need from a vector store, whatever engine sits behind it."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from finassist.domain import EmbeddedArticle, Filing, Hit, point_id
from finassist.query import filing_metadata
from finassist.store.sparse import SPARSE_VECTOR, SparseVec, sparse_document, sparse_query

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


RetrievalMode = Literal["dense", "sparse", "hybrid"]
Scored = tuple[str, float]  # (point id, score)
FusionMethod = Literal["mix", "rrf", "dbsf"]


@dataclass(frozen=True)
class SearchMode:
    """How a query is scored: the dense leg (cosine), the sparse leg (BM25 with the store's IDF), or both fused in
    one query. Fused scores are on the cosine's scale (at most 1), so a recency bonus means the same for each.

    - `mix`: `dense_weight`·cosine + (1−w)·BM25 / the query's best BM25 (`mix_scores`).
    - `rrf`: the engine's reciprocal rank fusion with constant `rrf_k` (unweighted), scaled by its best possible.
    - `dbsf`: the engine's distribution-based score fusion (unweighted), halved.
    """

    mode: RetrievalMode = "dense"
    fusion: FusionMethod = "mix"
    dense_weight: float = 0.5
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.mode not in ("dense", "sparse", "hybrid"):
            raise ValueError(f"unknown retrieval mode {self.mode!r}: dense, sparse or hybrid")
        if self.fusion not in ("mix", "rrf", "dbsf"):
            raise ValueError(f"unknown fusion {self.fusion!r}: mix, rrf or dbsf")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be within [0, 1]")


DENSE = SearchMode()

LEGACY_SCHEMA_HINT = (
    f"holds no `{SPARSE_VECTOR}` BM25 vectors: it was written before hybrid search (dense vectors only) or with an "
    "older BM25 text encoding. Run `finassist store reindex` to rebuild it from the stored texts and vectors (no "
    "re-embedding), or `finassist store reset --yes` and ingest again. Until then it is neither searched nor "
    "written, so old and new points never mix."
)


def mix_scores(dense: Mapping[str, float], sparse: Mapping[str, float], dense_weight: float) -> list[Scored]:
    """`dense_weight`·cosine + (1−w)·BM25/(the query's best BM25) per point id, best first.

    The cosine keeps its own scale: when the dense leg is unsure its scores are flat and move little, where min-max
    normalisation would stretch them to the same full range as a confident leg's (that lost up to 10 nDCG points on
    exact-term questions; docs/benchmarks.md). BM25 has no fixed scale, so it is divided by its best. The store
    passes both legs' exact scores for every candidate (`VectorStore._complete`); a point still missing from one
    leg gets that leg's floor: its lowest candidate's cosine, or BM25 0 (no shared term).
    """
    floor = min(dense.values(), default=0.0)
    top = max(sparse.values(), default=0.0)
    scale = 1 / top if top > 0 else 0.0
    mixed = [
        (pid, dense_weight * dense.get(pid, floor) + (1 - dense_weight) * sparse.get(pid, 0.0) * scale)
        for pid in dict.fromkeys([*sparse, *dense])
    ]
    return sorted(mixed, key=lambda x: x[1], reverse=True)


@dataclass(frozen=True)
class SearchFilter:
    """Engine-neutral filter: any of `symbols`, created_at in [since, until), and (when given) one of `ids`."""

    symbols: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[str, ...] = ()  # point ids


@dataclass(frozen=True)
class StoredPoint:
    id: str
    vector: Sequence[float]
    payload: dict[str, Any]
    sparse: SparseVec | None = None


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)  # article ids whose chunks were (re)written
    unchanged: list[str] = field(default_factory=list)  # same version already stored
    stale: list[str] = field(default_factory=list)  # an older version than the stored one: ignored
    points: int = 0


def filing_payload(headline: str) -> dict[str, Any] | None:
    """A filing-like title's company, fiscal year and form, as stored with every chunk (None: not a filing)."""
    meta = filing_metadata(headline)
    if meta is None:
        return None
    return {"company": meta.company.upper(), "fiscal_year": meta.year, "form": meta.form, "page": meta.page}


def chunk_payload(item: EmbeddedArticle, index: int, text: str) -> dict[str, Any]:
    a = item.article
    filing = filing_payload(item.clean.headline)
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
        **({"filing": filing} if filing else {}),
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
        filing=Filing.model_validate(payload["filing"]) if payload.get("filing") else None,
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
    def _search_dense(self, vector: Sequence[float], limit: int, flt: SearchFilter | None) -> list[Hit]: ...

    @abstractmethod
    def _search_sparse(self, sparse: SparseVec, limit: int, flt: SearchFilter | None) -> list[Hit]: ...

    @abstractmethod
    def _score_both(
        self, vector: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Both legs' top `limit` point ids → score, best first, in one round trip (a query batch), without payloads:
        reading payloads costs more than scoring (at 100k chunks one mixed store query went 19.2 → 7.5 ms p50 when
        only the returned hits' payloads were read; benchmarks/serve.py)."""

    @abstractmethod
    def _payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Point id → payload of those of `ids` that exist (one read)."""

    @abstractmethod
    def _search_fused(
        self, vector: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None, how: SearchMode
    ) -> list[Hit]:
        """One query: both legs as prefetches, fused by the engine (`how.fusion` rrf or dbsf), raw fused scores."""

    def schema_problem(self) -> str | None:
        """What is wrong with an existing collection's schema (an old dense-only one), None when it is current."""
        return None

    @abstractmethod
    def reindex(self) -> int:
        """Rebuild an old dense-only collection in the current schema from its stored vectors and texts (sparse
        vectors computed from each chunk's text); returns the points rebuilt, 0 when nothing needed doing."""

    @abstractmethod
    def count(self, articles: bool = False) -> int:
        """Points in the collection, or articles (points with chunk_index 0)."""

    @abstractmethod
    def latest(self, n: int) -> list[Hit]:
        """The `n` newest articles by `created_at` (their first chunk, score 0), newest first."""

    @abstractmethod
    def dim(self) -> int | None:
        """Vector size of the collection, None if it does not exist yet."""

    def optimize(self) -> bool:
        """Build the search indexes now (the embedded shard otherwise scans exactly); True if anything was built.
        A Qdrant server optimises by itself: a no-op there."""
        return False

    def flush(self) -> None:  # noqa: B027 (a no-op where the engine makes writes durable itself)
        """Make every acknowledged write durable."""

    def close(self) -> None:  # noqa: B027
        """Release files and connections."""

    @abstractmethod
    def drop(self) -> None:
        """Delete the collection and everything in it."""

    # --- shared logic --------------------------------------------------------------------------
    def _check_schema(self) -> None:
        problem = self.schema_problem()
        if problem:
            raise StoreError(problem)

    def search(
        self,
        vector: Sequence[float] | None,
        limit: int,
        flt: SearchFilter | None = None,
        text: str | None = None,
        how: SearchMode = DENSE,
    ) -> list[Hit]:
        """Top `limit` chunks. `how.mode` picks the legs; the sparse leg needs `text` (without it: dense), the dense
        leg `vector`. A query with no indexable term (only stopwords) has no sparse leg: hybrid falls back to dense."""
        if self.dim() is None:
            return []
        self._check_schema()
        mode = how.mode if text is not None else "dense"
        sparse = sparse_query(text) if mode != "dense" and text is not None else None
        if mode == "sparse":
            return self._search_sparse(sparse, limit, flt) if sparse else []
        if vector is None:
            raise ValueError(f"{mode} search needs the query's dense vector")
        if mode == "dense" or not sparse:
            return self._search_dense(vector, limit, flt)
        if how.fusion == "mix":
            dense, bm25 = self._complete(vector, sparse, *self._score_both(vector, sparse, limit, flt), flt)
            return self._fetch_hits(mix_scores(dense, bm25, how.dense_weight)[:limit])
        hits = self._search_fused(vector, sparse, limit, flt, how)
        # Scale to [0, 1]: RRF's best is 2 / (k + 1) (rank 1 in both legs), DBSF sums two [0, 1] legs.
        # (qdrant-client's local mode counts ranks from 0, so its best RRF score is a little higher: capped.)
        top = 2.0 / (how.rrf_k + 1) if how.fusion == "rrf" else 2.0
        return [h.model_copy(update={"score": min(1.0, h.score / top)}) for h in hits]

    def _fetch_hits(self, scored: Sequence[Scored]) -> list[Hit]:
        """The points as hits with the given scores, in the given order; a point deleted since scoring is left out."""
        payloads = self._payloads([pid for pid, _ in scored]) if scored else {}
        return [payload_to_hit(score, payloads[pid]) for pid, score in scored if pid in payloads]

    def _complete(
        self,
        vector: Sequence[float],
        sparse: SparseVec,
        dense: dict[str, float],
        bm25: dict[str, float],
        flt: SearchFilter | None,
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Both legs' exact scores for every point either leg returned: one more query batch, restricted to those
        points, so the mix never has to guess a score for a chunk outside one leg's top `limit` (how deep the legs
        were fetched stops mattering). A chunk that shares no term with the query has no BM25 score: it stays 0."""
        missing = dense.keys() ^ bm25.keys()
        if not missing:
            return dense, bm25
        scoped = replace(flt or SearchFilter(), ids=tuple(sorted(missing)))
        more_d, more_s = self._score_both(vector, sparse, len(missing), scoped)
        return (
            dense | {pid: v for pid, v in more_d.items() if pid not in dense},
            bm25 | {pid: v for pid, v in more_s.items() if pid not in bm25},
        )

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
            self._check_schema()
            fresh, unchanged, stale = select_fresh(items, self.versions([i.article.id for i in items]))
            points = [
                StoredPoint(
                    point_id(item.article.id, c.index),
                    vec,
                    chunk_payload(item, c.index, c.text),
                    sparse_document(c.text),
                )
                for item in fresh
                for c, vec in zip(item.chunks, item.vectors, strict=True)
            ]
            if points:
                self._upsert(points)
                self._delete_tails({item.article.id: len(item.chunks) for item in fresh})
        return WriteResult([i.article.id for i in fresh], unchanged, stale, len(points))
