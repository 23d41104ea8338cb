"""Feature-pipeline throughput vs raw SentenceTransformer.encode of exactly the same chunks, in one process and run.

    python benchmarks/ingest.py [--articles 5000] [--data ../shared/data/benzinga_headlines.jsonl.gz]

The pipeline runs the real Bytewax dataflow (validate → clean → chunk → embed → upsert into a fresh embedded store);
the baseline encodes the chunk texts that the same transforms produce, with the same batch size. The model is loaded
once, before either is timed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benzinga_headlines.jsonl.gz"


def first_lines(path: Path, n: int) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return [line for _, line in zip(range(n), f, strict=False)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=5000)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"benchmark data not found: {args.data} (it lives in ../shared/data)")

    from finassist.config import Settings
    from finassist.domain import CleanArticle, NewsArticle, RawRecord
    from finassist.embed import get_embedder
    from finassist.feature.chunk import ChunkSpec, chunk_articles
    from finassist.feature.clean import clean_article
    from finassist.feature.flow import run_flow
    from finassist.feature.sources.file import NewsFileSource
    from finassist.feature.validate import validate_record
    from finassist.store import close_stores, open_store

    lines = first_lines(args.data, args.articles)
    with tempfile.TemporaryDirectory(prefix="finassist-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        embedder = get_embedder(settings.embedding_model, settings.embedding_device)
        # The chunks the pipeline will embed, made by the same pure transforms (not timed).
        steps: dict[str, float] = {}
        t0 = time.perf_counter()
        articles = [validate_record(RawRecord("bench", line), settings.max_article_bytes) for line in lines]
        steps["validate_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cleaned = [
            c for a in articles if isinstance(a, NewsArticle) for c in [clean_article(a)] if isinstance(c, CleanArticle)
        ]
        steps["clean_s"] = time.perf_counter() - t0
        spec = ChunkSpec(settings.chunk_tokens, settings.chunk_overlap, embedder.max_seq_length)
        t0 = time.perf_counter()
        chunked = []
        for b in range(0, len(cleaned), settings.batch_articles):  # as the dataflow does: one call per micro-batch
            chunked += chunk_articles(cleaned[b : b + settings.batch_articles], embedder.tokenizer, spec)
        steps["chunk_s"] = time.perf_counter() - t0
        texts = [c.text for ca in chunked for c in ca.chunks]
        embedder.encode(texts[:256], batch_size=settings.embed_batch_size)  # warm-up

        # Why micro-batches are large: encode sorts one call's texts by length, so small calls pad more.
        sample = texts[:1280]
        calls = {}
        for per_call in (64, 256, len(sample)):
            t0 = time.perf_counter()
            for b in range(0, len(sample), per_call):
                embedder.encode(sample[b : b + per_call], batch_size=settings.embed_batch_size)
            calls[f"encode_{len(sample)}_in_calls_of_{per_call}_s"] = round(time.perf_counter() - t0, 2)

        t0 = time.perf_counter()
        embedder._model.encode(
            texts,
            batch_size=settings.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        raw_s = time.perf_counter() - t0

        news = Path(tmp) / "news.jsonl"
        news.write_bytes(b"".join(lines))
        t0 = time.perf_counter()
        stats = run_flow(
            NewsFileSource([news], batch_size=settings.batch_articles), settings, "bench", workers=args.workers
        )
        pipe_s = time.perf_counter() - t0
        points = open_store(settings).count()
        close_stores()

    result = {
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}",
        "articles": len(lines),
        "chunks": len(texts),
        "batch_size": settings.embed_batch_size,
        "workers": args.workers,
        "raw_encode_s": round(raw_s, 2),
        "raw_chunks_per_s": round(len(texts) / raw_s, 1),
        "pipeline_s": round(pipe_s, 2),
        "pipeline_articles_per_s": round(stats.articles_ok / pipe_s, 1),
        "pipeline_chunks_per_s": round(stats.chunks / pipe_s, 1),
        "ratio_pipeline_to_raw": round((stats.chunks / pipe_s) / (len(texts) / raw_s), 3),
        "batch_articles": settings.batch_articles,
        **{k: round(v, 2) for k, v in steps.items()},
        **calls,
        "points_in_store": points,
        "quarantined": stats.quarantined,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
