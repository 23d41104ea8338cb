"""Embedded feature store: Qdrant's own engine in-process (qdrant-edge), one shard directory on local disk.

Chosen over qdrant-client's local mode, which commits to SQLite per point (10k points: 67 s on disk) and would make
the store the pipeline's bottleneck; an edge shard takes the same 10k points in well under a second
(benchmarks/store.py). A shard directory can be open in one process only: that process owns it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import qdrant_edge as qe

from finassist.domain import Hit, point_id
from finassist.store.base import (
    PAYLOAD_INDEXES,
    SearchFilter,
    StoreBusyError,
    StoredPoint,
    StoreError,
    VectorStore,
    payload_to_hit,
)

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
    return qe.Filter(must=must) if must else None


class EdgeStore(VectorStore):
    kind = "embedded"

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._shard: qe.EdgeShard | None = None
        self._dim: int | None = None
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

    def ensure(self, dim: int) -> None:
        with self._open_lock:
            if self._shard is None:
                self.path.mkdir(parents=True, exist_ok=True)
                config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
                self._shard = qe.EdgeShard.create(str(self.path), config)
                for field, schema in PAYLOAD_INDEXES.items():
                    self._shard.update(qe.UpdateOperation.create_field_index(field, _SCHEMA[schema]))
        have = self.dim()
        if have != dim:
            raise StoreError(f"the store at {self.path} holds {have}-d vectors, the embedding model makes {dim}-d")

    def dim(self) -> int | None:
        if self._shard is None:
            return None
        if self._dim is None:
            config = json.loads((self.path / "edge_config.json").read_text())
            vectors = config.get("vectors", {})
            params = vectors.get("", next(iter(vectors.values()), {})) if isinstance(vectors, dict) else {}
            self._dim = int(params["size"]) if "size" in params else None
        return self._dim

    def _versions(self, article_ids: Sequence[str]) -> dict[str, float]:
        if self._shard is None:
            return {}
        records = self._shard.retrieve([point_id(a, 0) for a in article_ids], ["article_id", "updated_at"], False)
        return {r.payload["article_id"]: r.payload["updated_at"] for r in records}

    def _upsert(self, points: Sequence[StoredPoint]) -> None:
        assert self._shard is not None
        self._shard.update(
            qe.UpdateOperation.upsert_points(
                [qe.Point(id=p.id, vector=list(p.vector), payload=p.payload) for p in points]
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

    def search(self, vector: Sequence[float], limit: int, flt: SearchFilter | None = None) -> list[Hit]:
        if self._shard is None:
            return []
        request = qe.QueryRequest(
            limit=limit, query=qe.Query.Nearest(list(vector)), with_payload=True, filter=_edge_filter(flt)
        )
        return [payload_to_hit(p.score, p.payload) for p in self._shard.query(request)]

    def count(self, articles: bool = False) -> int:
        if self._shard is None:
            return 0
        flt = qe.Filter(must=[qe.FieldCondition(key="chunk_index", match=qe.MatchValue(value=0))]) if articles else None
        return int(self._shard.count(qe.CountRequest(filter=flt, exact=True)))

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

    def drop(self) -> None:
        import shutil

        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
