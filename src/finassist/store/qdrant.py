"""Qdrant server or cluster through qdrant-client (also its local mode, which speaks the same API: tests use it)."""

from __future__ import annotations

from collections.abc import Sequence

from qdrant_client import QdrantClient, models

from finassist.domain import Hit, point_id
from finassist.store.base import PAYLOAD_INDEXES, SearchFilter, StoredPoint, StoreError, VectorStore, payload_to_hit

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
    return models.Filter(must=must) if must else None


class QdrantStore(VectorStore):
    kind = "qdrant"

    def __init__(self, client: QdrantClient, collection: str, shards: int = 1, replicas: int = 1):
        super().__init__()
        self.client = client
        self.collection = collection
        self._shards = shards
        self._replicas = replicas
        self._ready = 0  # the vector size once the collection is known to exist with it

    def ensure(self, dim: int) -> None:
        if self._ready == dim:
            return  # checked once per store object: no server round trip per write
        if not self._ready and not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
                shard_number=self._shards,
                replication_factor=self._replicas,
            )
            for field, schema in PAYLOAD_INDEXES.items():
                self.client.create_payload_index(self.collection, field, _SCHEMA[schema])
        have = self.dim()
        if have != dim:
            raise StoreError(f"collection {self.collection} holds {have}-d vectors, the embedding model makes {dim}-d")
        self._ready = dim

    def dim(self) -> int | None:
        if not self.client.collection_exists(self.collection):
            return None
        params = self.client.get_collection(self.collection).config.params.vectors
        return int(params.size) if isinstance(params, models.VectorParams) else None

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
            points=[models.PointStruct(id=p.id, vector=list(p.vector), payload=p.payload) for p in points],
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

    def search(self, vector: Sequence[float], limit: int, flt: SearchFilter | None = None) -> list[Hit]:
        if not self.client.collection_exists(self.collection):
            return []
        result = self.client.query_points(
            self.collection, query=list(vector), query_filter=qdrant_filter(flt), limit=limit, with_payload=True
        )
        return [payload_to_hit(p.score, p.payload or {}) for p in result.points]

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
