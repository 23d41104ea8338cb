"""Embedded feature store: Qdrant's own engine in-process (qdrant-edge), one shard directory on local disk.

Chosen over qdrant-client's local mode, which commits to SQLite per point (10k points: 67 s on disk) and would make
the store the pipeline's bottleneck; an edge shard takes the same 10k points in well under a second
(benchmarks/store.py). A shard directory can be open in one process only: that process owns it.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import qdrant_edge as qe

from finassist.domain import Hit, point_id
from finassist.store.base import (
    LEGACY_SCHEMA_HINT,
    PAYLOAD_INDEXES,
    SearchFilter,
    SearchMode,
    StoreBusyError,
    StoredPoint,
    StoreError,
    VectorStore,
    payload_to_hit,
)
from finassist.store.sparse import DENSE_VECTOR, SPARSE_VECTOR, SparseVec, sparse_document

REINDEX_PAGE = 1_000

_SCHEMA = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "float": qe.PayloadSchemaType.Float,
    "integer": qe.PayloadSchemaType.Integer,
}


def _edge_filter(flt: SearchFilter | None) -> qe.Filter | None:
    if flt is None:
        return None
    must: list = []
    if flt.symbols:
        must.append(qe.FieldCondition(key="symbols", match=qe.MatchAny(any=list(flt.symbols))))
    if flt.since or flt.until:
        must.append(
            qe.FieldCondition(
                key="created_at",
                range=qe.RangeFloat(
                    gte=flt.since.timestamp() if flt.since else None,
                    lt=flt.until.timestamp() if flt.until else None,
                ),
            )
        )
    if flt.ids:
        must.append(qe.HasIdCondition(point_ids=set(flt.ids)))
    return qe.Filter(must=must) if must else None


def _sparse(v: SparseVec) -> qe.SparseVector:
    return qe.SparseVector(indices=list(v.indices), values=list(v.values))


def _config(dim: int) -> qe.EdgeConfig:
    return qe.EdgeConfig(
        vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )


class EdgeStore(VectorStore):
    kind = "embedded"

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._shard: qe.EdgeShard | None = None
        self._dim: int | None = None
        self._current = False  # the open shard is known to have the current schema
        self._open_lock = threading.Lock()
        if (self.path / "edge_config.json").exists():
            self._shard = self._load()

    def _load(self) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(self.path))
        except Exception as e:  # the binding raises a bare Exception
            if "WouldBlock" in str(e):
                raise StoreBusyError(
                    f"the embedded store {self.path} is open in another process. Only one process can own it: "
                    "stop that process, run ingestion inside it (`finassist serve --ingest ...`), or use a Qdrant "
                    "server (FINASSIST_QDRANT_URL)."
                ) from None
            raise StoreError(f"cannot open the embedded store {self.path}: {e}") from e

    @staticmethod
    def _create(path: Path, dim: int) -> qe.EdgeShard:
        path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(path), _config(dim))
        for field, schema in PAYLOAD_INDEXES.items():
            shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[schema]))
        return shard

    def ensure(self, dim: int) -> None:
        with self._open_lock:
            if self._shard is None:
                self._shard = self._create(self.path, dim)
        have = self.dim()
        if have != dim:
            raise StoreError(f"the store at {self.path} holds {have}-d vectors, the embedding model makes {dim}-d")

    def _vector_config(self) -> dict:
        return json.loads((self.path / "edge_config.json").read_text())

    def dim(self) -> int | None:
        if self._shard is None:
            return None
        if self._dim is None:
            vectors = self._vector_config().get("vectors", {})
            params = vectors.get(DENSE_VECTOR, vectors.get("", {})) if isinstance(vectors, dict) else {}
            self._dim = int(params["size"]) if "size" in params else None
        return self._dim

    def schema_problem(self) -> str | None:
        if self._shard is None or self._current:
            return None  # checked once per open shard: no file read per search
        config = self._vector_config()
        if DENSE_VECTOR in config.get("vectors", {}) and SPARSE_VECTOR in (config.get("sparse_vectors") or {}):
            self._current = True
            return None
        return f"the embedded store {self.path} {LEGACY_SCHEMA_HINT}"

    def _scroll(self, shard: qe.EdgeShard) -> Iterator[list]:
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=REINDEX_PAGE, with_payload=True, with_vector=True)
            )
            if records:
                yield records
            if offset is None:
                return

    def reindex(self) -> int:
        with self._write_lock:
            if self._shard is None or self.schema_problem() is None:
                return 0
            dim = self.dim()
            assert dim is not None
            old = self._shard
            new_path = self.path.with_name(self.path.name + ".reindex")
            shutil.rmtree(new_path, ignore_errors=True)  # left by an interrupted reindex: the old store is intact
            new = self._create(new_path, dim)
            n = 0
            for records in self._scroll(old):
                points = []
                for r in records:
                    vector = r.vector.get(DENSE_VECTOR, r.vector.get("")) if isinstance(r.vector, dict) else r.vector
                    sparse = sparse_document(str(r.payload.get("text", "")))
                    points.append(
                        qe.Point(id=r.id, vector={DENSE_VECTOR: list(vector), SPARSE_VECTOR: _sparse(sparse)},
                                 payload=r.payload)
                    )
                new.update(qe.UpdateOperation.upsert_points(points))
                n += len(points)
            new.flush()
            new.close()
            self.close()
            # Swap directories; a crash between the two renames leaves both copies under their own names.
            backup = self.path.with_name(self.path.name + ".dense-only")
            shutil.rmtree(backup, ignore_errors=True)
            self.path.rename(backup)
            new_path.rename(self.path)
            shutil.rmtree(backup, ignore_errors=True)
            self._shard = self._load()
            return n

    def _versions(self, article_ids: Sequence[str]) -> dict[str, float]:
        if self._shard is None:
            return {}
        records = self._shard.retrieve([point_id(a, 0) for a in article_ids], ["article_id", "updated_at"], False)
        return {r.payload["article_id"]: r.payload["updated_at"] for r in records}

    def _upsert(self, points: Sequence[StoredPoint]) -> None:
        assert self._shard is not None
        self._shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        id=p.id,
                        vector={DENSE_VECTOR: list(p.vector), SPARSE_VECTOR: _sparse(p.sparse or sparse_document(""))},
                        payload=p.payload,
                    )
                    for p in points
                ]
            )
        )

    def _delete_tails(self, n_chunks: dict[str, int]) -> None:
        assert self._shard is not None
        tails = [
            qe.Filter(
                must=[
                    qe.FieldCondition(key="article_id", match=qe.MatchValue(value=aid)),
                    qe.FieldCondition(key="chunk_index", range=qe.RangeFloat(gte=float(n))),
                ]
            )
            for aid, n in n_chunks.items()
        ]
        self._shard.update(qe.UpdateOperation.delete_points_by_filter(qe.Filter(should=tails)))

    def _query(self, query, limit: int, flt: SearchFilter | None, prefetches=None, payload=True) -> qe.QueryRequest:
        return qe.QueryRequest(
            limit=limit, query=query, prefetches=prefetches, with_payload=payload, filter=_edge_filter(flt)
        )

    def _run(self, request: qe.QueryRequest) -> list[Hit]:
        assert self._shard is not None
        return [payload_to_hit(p.score, p.payload) for p in self._shard.query(request)]

    def _search_dense(self, vector: Sequence[float], limit: int, flt: SearchFilter | None) -> list[Hit]:
        return self._run(self._query(qe.Query.Nearest(list(vector), using=DENSE_VECTOR), limit, flt))

    def _search_sparse(self, sparse: SparseVec, limit: int, flt: SearchFilter | None) -> list[Hit]:
        return self._run(self._query(qe.Query.Nearest(_sparse(sparse), using=SPARSE_VECTOR), limit, flt))

    def _score_both(
        self, vector: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None
    ) -> tuple[dict[str, float], dict[str, float]]:
        assert self._shard is not None
        dense_q = self._query(qe.Query.Nearest(list(vector), using=DENSE_VECTOR), limit, flt, payload=False)
        sparse_q = self._query(qe.Query.Nearest(_sparse(sparse), using=SPARSE_VECTOR), limit, flt, payload=False)
        d, s = self._shard.query_batch(qe.QueryBatchRequest([dense_q, sparse_q]))
        return {str(p.id): p.score for p in d}, {str(p.id): p.score for p in s}

    def _payloads(self, ids: Sequence[str]) -> dict[str, dict]:
        assert self._shard is not None
        return {str(r.id): r.payload for r in self._shard.retrieve(list(ids), True, False)}

    def _search_fused(
        self, vector: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None, how: SearchMode
    ) -> list[Hit]:
        f = _edge_filter(flt)
        legs = [
            qe.Prefetch(limit=limit, query=qe.Query.Nearest(list(vector), using=DENSE_VECTOR), filter=f),
            qe.Prefetch(limit=limit, query=qe.Query.Nearest(_sparse(sparse), using=SPARSE_VECTOR), filter=f),
        ]
        fusion = qe.Fusion.Rrf(k=how.rrf_k) if how.fusion == "rrf" else qe.Fusion.Dbsf()
        return self._run(self._query(fusion, limit, flt, legs))

    def count(self, articles: bool = False) -> int:
        if self._shard is None:
            return 0
        flt = qe.Filter(must=[qe.FieldCondition(key="chunk_index", match=qe.MatchValue(value=0))]) if articles else None
        return int(self._shard.count(qe.CountRequest(filter=flt, exact=True)))

    def latest(self, n: int) -> list[Hit]:
        if self._shard is None or n <= 0:
            return []
        records, _ = self._shard.scroll(qe.ScrollRequest(
            limit=n, with_payload=True, with_vector=False,
            filter=qe.Filter(must=[qe.FieldCondition(key="chunk_index", match=qe.MatchValue(value=0))]),
            order_by=qe.OrderBy("created_at", direction=qe.Direction.Desc),
        ))
        return [payload_to_hit(0.0, r.payload) for r in records]

    def optimize(self) -> bool:
        with self._write_lock:
            return bool(self._shard.optimize()) if self._shard is not None else False

    def flush(self) -> None:
        if self._shard is not None:
            self._shard.flush()

    def close(self) -> None:
        with self._open_lock:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
                self._dim = None
                self._current = False

    def drop(self) -> None:
        import shutil

        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
