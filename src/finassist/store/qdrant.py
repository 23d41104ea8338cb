"""Qdrant server or cluster through qdrant-client (also its local mode, which speaks the same API: tests use it)."""

from __future__ import annotations

from collections.abc import Sequence

from qdrant_client import QdrantClient, models

from finassist.domain import Hit, point_id
from finassist.store.base import (
    LEGACY_SCHEMA_HINT,
    PAYLOAD_INDEXES,
    SearchFilter,
    SearchMode,
    StoredPoint,
    StoreError,
    VectorStore,
    payload_to_hit,
)
from finassist.store.sparse import DENSE_VECTOR, SPARSE_VECTOR, SparseVec, sparse_document

REINDEX_PAGE = 1_000

_SCHEMA = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "float": models.PayloadSchemaType.FLOAT,
    "integer": models.PayloadSchemaType.INTEGER,
}


def qdrant_filter(flt: SearchFilter | None) -> models.Filter | None:
    if flt is None:
        return None
    must: list[models.Condition] = []
    if flt.symbols:
        must.append(models.FieldCondition(key="symbols", match=models.MatchAny(any=list(flt.symbols))))
    if flt.since or flt.until:
        must.append(
            models.FieldCondition(
                key="created_at",
                range=models.Range(
                    gte=flt.since.timestamp() if flt.since else None,
                    lt=flt.until.timestamp() if flt.until else None,
                ),
            )
        )
    if flt.ids:
        must.append(models.HasIdCondition(has_id=list(flt.ids)))
    return models.Filter(must=must) if must else None


def _sparse(v: SparseVec) -> models.SparseVector:
    return models.SparseVector(indices=list(v.indices), values=list(v.values))


class QdrantStore(VectorStore):
    kind = "qdrant"

    def __init__(self, client: QdrantClient, collection: str, shards: int = 1, replicas: int = 1):
        super().__init__()
        self.client = client
        self.collection = collection
        self._shards = shards
        self._replicas = replicas
        self._ready = 0  # the vector size once the collection is known to exist with it
        self._current = False  # the collection is known to have the current (dense + bm25) schema

    def ensure(self, dim: int) -> None:
        if self._ready == dim:
            return  # checked once per store object: no server round trip per write
        if not self._ready and not self.client.collection_exists(self.collection):
            self._create(self.collection, dim)
        have = self.dim()
        if have != dim:
            raise StoreError(f"collection {self.collection} holds {have}-d vectors, the embedding model makes {dim}-d")
        self._ready = dim

    def _create(self, name: str, dim: int) -> None:
        self.client.create_collection(
            name,
            vectors_config={DENSE_VECTOR: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            shard_number=self._shards,
            replication_factor=self._replicas,
        )
        for field, schema in PAYLOAD_INDEXES.items():
            self.client.create_payload_index(name, field, _SCHEMA[schema])

    def _params(self) -> models.CollectionParams | None:
        if not self.client.collection_exists(self.collection):
            return None
        return self.client.get_collection(self.collection).config.params

    def dim(self) -> int | None:
        if self._ready and self._current:
            return self._ready  # known since ensure/first search: no server round trip per search
        params = self._params()
        if params is None:
            return None
        vectors = params.vectors
        if isinstance(vectors, dict):
            vectors = vectors.get(DENSE_VECTOR)
        if not isinstance(vectors, models.VectorParams):
            return None
        self._ready = int(vectors.size)  # the collection exists with it
        return self._ready

    def schema_problem(self) -> str | None:
        if self._current:
            return None
        params = self._params()
        if params is None:
            return None
        if (
            isinstance(params.vectors, dict)
            and DENSE_VECTOR in params.vectors
            and SPARSE_VECTOR in (params.sparse_vectors or {})
        ):
            self._current = True
            return None
        return f"collection {self.collection} {LEGACY_SCHEMA_HINT}"

    def _copy(self, source: str, target: str) -> int:
        """Every point of `source` into `target` in the current schema, sparse vectors from the payload text."""
        n, offset = 0, None
        while True:
            records, offset = self.client.scroll(
                source, limit=REINDEX_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            points = []
            for r in records:
                vector = r.vector.get(DENSE_VECTOR, r.vector.get("")) if isinstance(r.vector, dict) else r.vector
                sparse = sparse_document(str((r.payload or {}).get("text", "")))
                points.append(
                    models.PointStruct(
                        id=r.id, vector={DENSE_VECTOR: list(vector), SPARSE_VECTOR: _sparse(sparse)}, payload=r.payload
                    )
                )
            if points:
                self.client.upsert(target, points=points, wait=True)
                n += len(points)
            if offset is None:
                return n

    def reindex(self) -> int:
        with self._write_lock:
            if self.schema_problem() is None:
                return 0
            dim = self.dim()
            assert dim is not None
            # A server cannot rename a collection or change its vector names: copy out, recreate, copy back.
            staging = f"{self.collection}-reindex"
            if self.client.collection_exists(staging):
                self.client.delete_collection(staging)  # left by an interrupted reindex: the original is intact
            self._create(staging, dim)
            self._copy(self.collection, staging)
            self.client.delete_collection(self.collection)
            self._create(self.collection, dim)
            n = self._copy(staging, self.collection)
            self.client.delete_collection(staging)
            self._ready = dim
            return n

    def _versions(self, article_ids: Sequence[str]) -> dict[str, float]:
        if not self.client.collection_exists(self.collection):
            return {}
        records = self.client.retrieve(
            self.collection, [point_id(a, 0) for a in article_ids], with_payload=["article_id", "updated_at"]
        )
        return {r.payload["article_id"]: r.payload["updated_at"] for r in records}

    def _upsert(self, points: Sequence[StoredPoint]) -> None:
        self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(
                    id=p.id,
                    vector={DENSE_VECTOR: list(p.vector), SPARSE_VECTOR: _sparse(p.sparse or sparse_document(""))},
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    def _delete_tails(self, n_chunks: dict[str, int]) -> None:
        tails = [
            models.Filter(
                must=[
                    models.FieldCondition(key="article_id", match=models.MatchValue(value=aid)),
                    models.FieldCondition(key="chunk_index", range=models.Range(gte=n)),
                ]
            )
            for aid, n in n_chunks.items()
        ]
        self.client.delete(
            self.collection, points_selector=models.FilterSelector(filter=models.Filter(should=tails)), wait=True
        )

    @staticmethod
    def _hits(points: Sequence[models.ScoredPoint]) -> list[Hit]:
        return [payload_to_hit(p.score, p.payload or {}) for p in points]

    def _search_dense(self, vector: Sequence[float], limit: int, flt: SearchFilter | None) -> list[Hit]:
        result = self.client.query_points(
            self.collection, query=list(vector), using=DENSE_VECTOR, query_filter=qdrant_filter(flt), limit=limit,
            with_payload=True,
        )
        return self._hits(result.points)

    def _search_sparse(self, sparse: SparseVec, limit: int, flt: SearchFilter | None) -> list[Hit]:
        result = self.client.query_points(
            self.collection, query=_sparse(sparse), using=SPARSE_VECTOR, query_filter=qdrant_filter(flt), limit=limit,
            with_payload=True,
        )
        return self._hits(result.points)

    def _score_both(
        self, vector: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None
    ) -> tuple[dict[str, float], dict[str, float]]:
        f = qdrant_filter(flt)
        d, s = self.client.query_batch_points(
            self.collection,
            [
                models.QueryRequest(query=list(vector), using=DENSE_VECTOR, filter=f, limit=limit, with_payload=False),
                models.QueryRequest(query=_sparse(sparse), using=SPARSE_VECTOR, filter=f, limit=limit,
                                    with_payload=False),
            ],
        )
        return {str(p.id): p.score for p in d.points}, {str(p.id): p.score for p in s.points}

    def _payloads(self, ids: Sequence[str]) -> dict[str, dict]:
        return {str(r.id): r.payload or {} for r in self.client.retrieve(self.collection, list(ids), with_payload=True)}

    def _search_fused(
        self, vector: Sequence[float], sparse: SparseVec, limit: int, flt: SearchFilter | None, how: SearchMode
    ) -> list[Hit]:
        f = qdrant_filter(flt)
        fusion = (
            models.RrfQuery(rrf=models.Rrf(k=how.rrf_k))
            if how.fusion == "rrf"
            else models.FusionQuery(fusion=models.Fusion.DBSF)
        )
        result = self.client.query_points(
            self.collection,
            prefetch=[
                models.Prefetch(query=list(vector), using=DENSE_VECTOR, filter=f, limit=limit),
                models.Prefetch(query=_sparse(sparse), using=SPARSE_VECTOR, filter=f, limit=limit),
            ],
            query=fusion,
            query_filter=f,
            limit=limit,
            with_payload=True,
        )
        return self._hits(result.points)

    def latest(self, n: int) -> list[Hit]:
        if n <= 0 or not self.client.collection_exists(self.collection):
            return []
        first_chunks = models.Filter(must=[models.FieldCondition(key="chunk_index", match=models.MatchValue(value=0))])
        records, _ = self.client.scroll(
            self.collection, limit=n, with_payload=True, with_vectors=False, scroll_filter=first_chunks,
            order_by=models.OrderBy(key="created_at", direction=models.Direction.DESC),
        )
        return [payload_to_hit(0.0, r.payload or {}) for r in records]

    def count(self, articles: bool = False) -> int:
        if not self.client.collection_exists(self.collection):
            return 0
        flt = (
            models.Filter(must=[models.FieldCondition(key="chunk_index", match=models.MatchValue(value=0))])
            if articles
            else None
        )
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def close(self) -> None:
        self.client.close()

    def drop(self) -> None:
        self.client.delete_collection(self.collection)
        self._ready = 0
        self._current = False
