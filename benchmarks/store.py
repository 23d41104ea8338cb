"""Feature-store write and query rates: the embedded edge shard vs qdrant-client's local mode on disk.

    python benchmarks/store.py [--points 10000]

Writes go through `VectorStore.write` (version check + upsert + stale-chunk delete), in batches of 256 chunks of
8 articles, with random unit vectors of 384 dimensions. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np


def articles(n_points: int, per_article: int = 32, dim: int = 384):
    from finassist.domain import Chunk, CleanArticle, EmbeddedArticle, NewsArticle

    rng = np.random.default_rng(0)
    out = []
    for a in range(n_points // per_article):
        vecs = rng.normal(size=(per_article, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        art = NewsArticle(id=str(a), headline=f"headline {a}", symbols=["NVLT"], created_at="2026-09-01T00:00:00Z")
        chunks = tuple(Chunk(art.id, i, f"chunk {i} of article {a} " * 20) for i in range(per_article))
        out.append(EmbeddedArticle(CleanArticle(art, art.headline, "", ""), chunks, tuple(map(tuple, vecs.tolist()))))
    return out


def measure(store, items, batch_articles: int = 8) -> dict:
    from finassist.store import SearchFilter

    n = sum(len(i.chunks) for i in items)
    t0 = time.perf_counter()
    for b in range(0, len(items), batch_articles):
        store.write(items[b : b + batch_articles])
    store.flush()
    write_s = time.perf_counter() - t0
    q = np.random.default_rng(1).normal(size=(50, 384))
    t0 = time.perf_counter()
    for v in q:
        store.search(v.tolist(), 20, SearchFilter(symbols=("NVLT",)))
    query_ms = (time.perf_counter() - t0) / len(q) * 1000
    return {
        "points": n,
        "write_s": round(write_s, 2),
        "upserts_per_s": round(n / write_s),
        "query_ms": round(query_ms, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--local-points", type=int, default=2_000, help="qdrant-client local mode is slow: fewer points")
    args = ap.parse_args()
    from qdrant_client import QdrantClient

    from finassist.store.edge import EdgeStore
    from finassist.store.qdrant import QdrantStore

    with tempfile.TemporaryDirectory() as tmp:
        edge = EdgeStore(Path(tmp) / "edge")
        edge_result = measure(edge, articles(args.points))
        edge.close()
        local = QdrantStore(QdrantClient(path=str(Path(tmp) / "local")), "bench")
        local_result = measure(local, articles(args.local_points))
        local.close()
    print(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "embedded_edge": edge_result,
                "qdrant_client_local_disk": local_result,
                "edge_speedup_writes": round(edge_result["upserts_per_s"] / local_result["upserts_per_s"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
