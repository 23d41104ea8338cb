"""Store query latency per retrieval mode on a large embedded store: dense, BM25, hybrid (mix, rrf, dbsf).

    python benchmarks/retrieve_modes.py [--chunks 100000] [--queries 200] [--optimize]

The store is filled exactly as benchmarks/serve.py fills it (real embedded headlines plus noise, real headline text
as chunk text, through `VectorStore.write`), so each point has its dense and BM25 vectors. Each query (held-out
headlines, every other one with a `symbols` filter) is embedded once; then every mode runs the retriever's first
fetch (`store.search`, 4 × 3 × 5 = 60 chunks), modes interleaved per query, after 10 warm-up queries. The query
embedding (the same for every mode) is timed separately. `--optimize` builds the shard's indexes
(`EdgeShard.optimize`) and times the modes again. Prints one JSON object (progress on stderr).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("serve_bench", ROOT / "serve.py")
serve_bench = importlib.util.module_from_spec(_spec)
sys.path.insert(0, str(ROOT.parent / "tests"))
_spec.loader.exec_module(serve_bench)

MODES = {
    "dense": ("dense", "mix"),
    "sparse": ("sparse", "mix"),
    "hybrid-mix": ("hybrid", "mix"),
    "hybrid-rrf": ("hybrid", "rrf"),
    "hybrid-dbsf": ("hybrid", "dbsf"),
}


def time_modes(store, queries, vectors) -> dict:
    from finassist.store import SearchFilter, SearchMode

    series: dict[str, list[float]] = {m: [] for m in MODES}
    for i, ((q, syms), vec) in enumerate(zip(queries, vectors, strict=True)):
        names = list(MODES) if i % 2 else list(reversed(MODES))
        for name in names:
            mode, fusion = MODES[name]
            t0 = time.perf_counter()
            store.search(vec, 60, SearchFilter(tuple(syms)), text=q, how=SearchMode(mode, fusion))
            if i >= 10:
                series[name].append((time.perf_counter() - t0) * 1000)
    return {name: serve_bench.pct(v) for name, v in series.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--base-texts", type=int, default=2_500)
    ap.add_argument("--noise", type=float, default=0.025)
    ap.add_argument("--optimize", action="store_true")
    ap.add_argument("--data", type=Path, default=serve_bench.DEFAULT_DATA)
    args = ap.parse_args()

    from finassist.config import Settings
    from finassist.embed import get_embedder
    from finassist.store import close_stores, open_store

    records = serve_bench.read_records(args.data)
    order = np.random.default_rng(42).permutation(len(records))
    base = [records[i] for i in order[: args.base_texts]]
    held_out = [records[i] for i in order[args.base_texts : args.base_texts + args.queries + 10]]
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="finassist-modes-bench-") as tmp:
        settings = Settings(home=Path(tmp), tracing=False)
        embedder = get_embedder(settings.embedding_model, settings.embedding_device)
        filled = serve_bench.fill_store(settings, embedder, base, args)
        serve_bench.log(f"store: {filled['points']} points in {filled['write_s']} s")
        queries = serve_bench.retrieve_queries(held_out, args.queries + 10)
        embed_ms = []
        vectors = []
        for q, _ in queries:
            t0 = time.perf_counter()
            vectors.append(embedder.encode([q])[0].tolist())
            embed_ms.append((time.perf_counter() - t0) * 1000)
        store = open_store(settings)
        result = {
            "date": date.today().isoformat(),
            "cpus": os.cpu_count(),
            "store": filled,
            "query_embedding_ms": serve_bench.pct(embed_ms[10:]),
            "store_query_ms": time_modes(store, queries, vectors),
        }
        if args.optimize:
            t0 = time.perf_counter()
            store._shard.optimize()
            result["optimize_s"] = round(time.perf_counter() - t0, 1)
            result["store_query_ms_optimized"] = time_modes(store, queries, vectors)
        result["loadavg"] = [round(x, 2) for x in load_start] + [round(x, 2) for x in os.getloadavg()]
        close_stores()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
