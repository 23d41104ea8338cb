"""Retrieval evaluation on a BEIR-format dataset, through the real feature pipeline and the shared retriever.

Documents go through validate → clean → chunk → embed → upsert like news does, into a throw-away store, and each
question through the serving retriever (`retrieve_for_question`: its question → filters step included); a document's
score for a query is its best chunk's score. Metrics are the standard BEIR ones at a cutoff k.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from finassist.config import Settings
from finassist.store.base import SearchMode

EVAL_TIME = "2026-01-01T00:00:00Z"  # BEIR documents carry no time; one fixed stamp keeps them comparable
EVAL_NOW = datetime(2026, 1, 2, tzinfo=UTC)  # "now" for the questions' relative periods: the day after
TITLE_WORDS = 16


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with graded gains (rel), log2 discount; the ideal ranking sorts all judged-relevant documents."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


def corpus_as_news(doc: dict[str, Any]) -> dict[str, Any]:
    """A BEIR document as an Alpaca-schema record. Untitled documents lend their first words as the headline (and
    keep the rest as the body), so the chunk text is the document's own text and nothing else."""
    title = (doc.get("title") or "").strip()
    text = (doc.get("text") or "").strip()
    if not title:
        words = text.split(" ")
        title, text = " ".join(words[:TITLE_WORDS]), " ".join(words[TITLE_WORDS:])
    return {"id": str(doc["_id"]), "headline": title, "content": text, "created_at": EVAL_TIME}


class _Encoded:
    """The embedder with the queries' vectors computed up front in one batch (the retriever asks one at a time)."""

    def __init__(self, embedder: Any, texts: Sequence[str], vectors: np.ndarray):
        self._embedder = embedder
        self._vectors = dict(zip(texts, vectors, strict=True))

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self._embedder.encode(missing, batch_size), strict=True))
        return np.stack([self._vectors[t] for t in texts])


def eval_modes(settings: Settings, mode: str = "default", weights: Sequence[float] = ()) -> dict[str, SearchMode]:
    """The retrieval modes one evaluation scores, by name. `default`: the configured one; `all`: each leg alone and
    hybrid with every fusion method at the configured weight, plus the weighted mix at each of `weights`."""
    from finassist.store import search_mode

    configured = search_mode(settings)
    if mode == "default":
        return {"default": configured}
    if mode in ("dense", "sparse"):
        return {mode: replace(configured, mode=mode)}
    hybrid = replace(configured, mode="hybrid")
    if mode == "hybrid":
        return {"hybrid": hybrid}
    if mode != "all":
        raise ValueError(f"unknown mode {mode!r}: dense, sparse, hybrid or all")
    modes = {"dense": replace(configured, mode="dense"), "sparse": replace(configured, mode="sparse")}
    for fusion in ("mix", "rrf", "dbsf"):
        modes[f"hybrid-{fusion}"] = replace(hybrid, fusion=fusion)
    for w in weights:
        modes[f"hybrid-mix-w{w:g}"] = replace(hybrid, fusion="mix", dense_weight=w)
    return modes


def _scores(rankings: Sequence[tuple[list[str], Mapping[str, int]]], k: int) -> dict[str, float]:
    n = max(len(rankings), 1)
    return {
        f"ndcg@{k}": round(sum(ndcg_at_k(r, rel, k) for r, rel in rankings) / n, 4),
        f"recall@{k}": round(sum(recall_at_k(r, rel, k) for r, rel in rankings) / n, 4),
        f"mrr@{k}": round(sum(mrr_at_k(r, rel, k) for r, rel in rankings) / n, 4),
    }


def evaluate_beir(
    beir_dir: Path,
    settings: Settings,
    k: int = 10,
    workers: int = 1,
    mode: str = "default",
    weights: Sequence[float] = (),
) -> dict[str, Any]:
    """Ingest `corpus.jsonl` through the feature pipeline into a throw-away store (once), run `queries.jsonl` in
    every requested retrieval mode, score `qrels/test.tsv` at document level. The top-level metrics are the first
    mode's (the configured one unless `mode` names one); `modes` has each mode's, and per answer type when the
    queries carry `answer_from` (TAT-QA: text, table, table-text)."""
    from finassist.embed import get_embedder
    from finassist.feature.flow import run_flow
    from finassist.feature.sources.file import NewsFileSource
    from finassist.retrieval import Retriever, retrieve_for_question
    from finassist.store import open_store
    from finassist.symbols import load_aliases

    corpus, queries, qrels_path = beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv"
    for p in (corpus, queries, qrels_path):
        if not p.is_file():
            raise FileNotFoundError(f"not a BEIR directory: {p} is missing")
    modes = eval_modes(settings, mode, weights)
    qrels = read_qrels(qrels_path)
    with tempfile.TemporaryDirectory(prefix="finassist-eval-") as tmp:
        tmp_path = Path(tmp)
        # A Qdrant server gets a throw-away collection; the embedded store a throw-away home.
        update: dict[str, Any] = {"collection": f"eval-{uuid.uuid4().hex[:12]}"} if settings.qdrant_url else {}
        eval_settings = settings.model_copy(update={**update, "home": tmp_path / "home"})
        news = tmp_path / "corpus_news.jsonl"
        with corpus.open(encoding="utf-8") as src, news.open("w", encoding="utf-8") as dst:
            for line in src:
                if line.strip():
                    dst.write(json.dumps(corpus_as_news(json.loads(line))) + "\n")
        stats = run_flow(
            NewsFileSource([news], batch_size=settings.batch_articles), eval_settings, "eval", workers=workers
        )
        store = open_store(eval_settings)
        # Score the store as a finished backfill leaves it: optimised, its segments merged, so the BM25 IDF is the
        # whole corpus's whatever batches the ingest happened to cut (unoptimised, scores moved by ±0.5 nDCG).
        store.optimize()
        try:
            rows = [json.loads(line) for line in queries.open(encoding="utf-8") if line.strip()]
            rows = [q for q in rows if str(q["_id"]) in qrels]
            embedder = get_embedder(settings.embedding_model, settings.embedding_device)
            texts = [q["text"].strip() for q in rows]
            encoded = _Encoded(embedder, texts, embedder.encode(texts, batch_size=settings.embed_batch_size))
            aliases = load_aliases(settings.symbol_aliases)
            results: dict[str, Any] = {}
            for name, how in modes.items():
                retriever = Retriever(store, encoded, how)  # type: ignore[arg-type]
                rankings: dict[str, list[tuple[list[str], Mapping[str, int]]]] = {}
                for q, text in zip(rows, texts, strict=True):
                    hits = retrieve_for_question(
                        retriever, text, k, settings.recency_weight, settings.recency_half_life_hours, aliases,
                        now=EVAL_NOW, filing_boost=settings.filing_boost,
                    ).hits
                    ranking = ([h.article_id for h in hits], qrels[str(q["_id"])])
                    rankings.setdefault("", []).append(ranking)
                    if q.get("answer_from"):
                        rankings.setdefault(str(q["answer_from"]), []).append(ranking)
                scored = _scores(rankings.pop(""), k)
                if rankings:
                    scored["by_answer_type"] = {t: {**_scores(r, k), "queries": len(r)} for t, r in rankings.items()}
                results[name] = {"mode": how.mode, "fusion": how.fusion, "dense_weight": how.dense_weight, **scored}
            first = next(iter(results.values()))
            return {
                **{m: v for m, v in first.items() if "@" in m},
                "queries": len(rows),
                "docs": stats.articles_ok,
                "chunks": stats.chunks,
                "quarantined": stats.quarantined,
                "model": embedder.label,
                "chunk_tokens": settings.chunk_tokens,
                "modes": results,
            }
        finally:
            if settings.qdrant_url:
                store.drop()
            from finassist.store import close_stores

            close_stores()
