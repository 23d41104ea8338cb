"""Feature-pipeline commands: ingest (file, backfill, stream), retrieve, store, retrieval evaluation."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from finassist.cli.common import (
    AddrOpt,
    JsonOpt,
    ProcOpt,
    WorkersOpt,
    alpaca_settings,
    app,
    emit,
    eval_app,
    fail,
    ingest_app,
    load_settings,
    parse_cluster,
    parse_symbols,
    parse_when,
    setup_logging,
    store_app,
)


def _run_ingest(
    source, settings, job: str, as_json: bool, workers, process_id, addresses, optimize: bool = False
) -> None:
    """Run the feature pipeline; with `optimize` (file and backfill runs), a run that wrote at least
    FINASSIST_OPTIMIZE_MIN_CHUNKS chunks ends by building the store's indexes."""
    from finassist.feature.flow import IngestStats, run_flow
    from finassist.store import StoreError, open_store

    pid, addrs = parse_cluster(process_id, addresses, settings)
    progress = None
    if not as_json and sys.stderr.isatty():

        def progress(stats) -> None:
            d = stats.as_dict()
            sys.stderr.write(
                f"\r{d['articles_in']} articles ({d['articles_written']} new/updated, {d['quarantined']} quarantined)"
                f", {d['chunks']} chunks, {d['seconds']:.0f}s   "
            )
            sys.stderr.flush()

    stats = IngestStats()
    interrupted = False
    try:
        run_flow(
            source,
            settings,
            job,
            workers=workers or settings.workers,
            process_id=pid,
            addresses=addrs,
            on_progress=progress,
            stats=stats,
        )
    except StoreError as e:
        fail(str(e))
    except KeyboardInterrupt:
        interrupted = True  # the recovery state stays, so the same command resumes
    if progress:
        sys.stderr.write("\n")
    result = stats.as_dict()
    if interrupted:
        result["interrupted"] = True
    # In a cluster only the writer's process owns the embedded store (and the counts).
    if stats.articles_ok or stats.quarantined or not addrs:
        try:
            store = open_store(settings)
            result["points"] = store.count()
            if optimize and not interrupted and 0 < settings.optimize_min_chunks <= stats.chunks:
                t0 = time.perf_counter()
                result["optimized"] = store.optimize()  # False: the engine found nothing to build
                result["optimize_s"] = round(time.perf_counter() - t0, 1)
        except StoreError:
            pass
    if pid is not None:
        result["process_id"] = pid
    result["quarantine_file"] = str(settings.quarantine_path)
    human = (
        f"{result['articles_in']} articles in: {result['articles_written']} written, {result['articles_unchanged']} "
        f"unchanged, {result['articles_stale']} superseded by a newer version, {result['quarantined']} quarantined "
        f"({result['quarantine_file']}); {result['chunks']} chunks upserted in {result['seconds']} s"
    )
    emit(result, as_json, human)


@ingest_app.command("file")
def ingest_file(
    paths: Annotated[list[Path], typer.Argument(help="JSONL or JSONL.gz files in Alpaca's news schema.")],
    speed: Annotated[float, typer.Option(help="Replay pace: 0 = as fast as possible, 1 = real time, 60 = 60×.")] = 0,
    workers: WorkersOpt = None,
    process_id: ProcOpt = None,
    addresses: AddrOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay news files through the feature pipeline."""
    setup_logging()
    from finassist.feature.flow import job_key
    from finassist.feature.sources.file import NewsFileSource

    settings = load_settings()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}")
    if speed < 0:
        fail("--speed must be >= 0")
    source = NewsFileSource(paths, batch_size=settings.batch_articles, speed=speed)
    job = job_key("file", [str(p.resolve()) for p in paths], settings)
    _run_ingest(source, settings, job, as_json, workers, process_id, addresses, optimize=True)


@ingest_app.command("backfill")
def ingest_backfill(
    start: Annotated[str, typer.Option(help="Start (inclusive), ISO date/time or age like 7d.")],
    end: Annotated[str | None, typer.Option(help="End (exclusive); default now.")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated tickers; default all news.")] = None,
    workers: WorkersOpt = None,
    process_id: ProcOpt = None,
    addresses: AddrOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Backfill historical news from Alpaca's REST API, the time range split across all workers."""
    from finassist.feature.flow import job_key
    from finassist.feature.sources.alpaca import AlpacaBackfillSource

    settings = alpaca_settings()
    t0, t1 = parse_when(start), parse_when(end) if end else datetime.now(UTC)
    if t1 <= t0:
        fail("--end must be after --start")
    _, addrs = parse_cluster(process_id, addresses, settings)
    total_workers = (workers or settings.workers) * (len(addrs) if addrs else 1)
    syms = parse_symbols(symbols)
    source = AlpacaBackfillSource(settings, t0, t1, syms or None, slices=total_workers * 4)
    job = job_key("backfill", [t0.isoformat(), t1.isoformat(), ",".join(syms)], settings)
    _run_ingest(source, settings, job, as_json, workers, process_id, addresses, optimize=True)


@ingest_app.command("stream")
def ingest_stream(
    symbols: Annotated[str | None, typer.Option(help="Comma-separated tickers; default all news.")] = None,
    workers: WorkersOpt = None,
    process_id: ProcOpt = None,
    addresses: AddrOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow Alpaca's real-time news websocket (Ctrl-C to stop; restarting resumes and backfills the gap)."""
    from finassist.feature.flow import job_key
    from finassist.feature.sources.alpaca_stream import AlpacaStreamSource

    settings = alpaca_settings()
    syms = parse_symbols(symbols)
    source = AlpacaStreamSource(settings, syms or None)
    job = job_key("stream", [",".join(syms)], settings)
    _run_ingest(source, settings, job, as_json, workers, process_id, addresses)


@app.command("retrieve")
def retrieve(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100)] = 5,
    symbols: Annotated[str | None, typer.Option(help="Only news about these tickers (comma-separated).")] = None,
    since: Annotated[str | None, typer.Option(help="Only news created at/after: ISO date/time or age (7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Only news created before: ISO date/time or age.")] = None,
    all_chunks: Annotated[bool, typer.Option("--all-chunks", help="Allow several hits per article.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search the feature store."""
    setup_logging()
    from finassist.embed import get_embedder
    from finassist.retrieval import Retriever
    from finassist.store import StoreError, open_store, search_mode

    settings = load_settings()
    try:
        store = open_store(settings)
        embedder = get_embedder(settings.embedding_model, settings.embedding_device)
        retriever = Retriever(store, embedder, search_mode(settings))
        hits = retriever.retrieve(
            query,
            k=k,
            symbols=parse_symbols(symbols),
            since=parse_when(since) if since else None,
            until=parse_when(until) if until else None,
            per_article=not all_chunks,
        )
    except (StoreError, ValueError) as e:
        fail(str(e))
    rows = [h.model_dump(mode="json") for h in hits]
    human = (
        "\n\n".join(
            f"{i}. [{h.score:.3f}] {h.headline} ({h.created_at:%Y-%m-%d %H:%M}, {','.join(h.symbols)})"
            f" id={h.article_id}\n"
            f"   {h.text[len(h.headline) :].strip()[:300]}"
            for i, h in enumerate(hits, 1)
        )
        or "no results"
    )
    emit(rows, as_json, human)


@eval_app.command("retrieval")
def eval_retrieval(
    beir_dir: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100)] = 10,
    mode: Annotated[
        str,
        typer.Option(
            help="dense | sparse | hybrid | all (each leg, hybrid with each fusion) | default (FINASSIST_RETRIEVAL_*)."
        ),
    ] = "default",
    weights: Annotated[
        str | None, typer.Option(help="With --mode all: also the weighted mix at these dense weights, e.g. 0.2,0.5.")
    ] = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a BEIR corpus through the feature pipeline into a throw-away store (once) and score retrieval in each
    mode asked for."""
    setup_logging()
    from finassist.feature.evaluate import evaluate_beir

    settings = load_settings()
    try:
        ws = [float(w) for w in weights.split(",") if w.strip()] if weights else []
        result = evaluate_beir(beir_dir, settings, k=k, workers=workers or settings.workers, mode=mode, weights=ws)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    lines = [f"{name}: {value}" for name, value in result.items() if name != "modes"]
    for name, m in result["modes"].items():
        metrics = "  ".join(f"{key} {value:.4f}" for key, value in m.items() if "@" in key)
        lines.append(f"{name:>18}: {metrics}")
        for kind, t in m.get("by_answer_type", {}).items():
            lines.append(
                f"{'':>18}  {kind} ({t['queries']}): "
                + "  ".join(f"{key} {value:.4f}" for key, value in t.items() if "@" in key)
            )
    emit(result, as_json, "\n".join(lines))


@store_app.command("info")
def store_info(as_json: JsonOpt = False) -> None:
    """Points and articles in the feature store."""
    setup_logging()
    from finassist.store import StoreError, open_store
    from finassist.store.sparse import SPARSE_VECTOR

    settings = load_settings()
    try:
        store = open_store(settings)
        info = {
            "backend": store.kind,
            "collection": settings.collection,
            "points": store.count(),
            "articles": store.count(articles=True),
            "dim": store.dim(),
            "schema": "outdated (run `finassist store reindex`)" if store.schema_problem()
            else f"dense+{SPARSE_VECTOR}",
        }
    except StoreError as e:
        fail(str(e))
    if not settings.qdrant_url:
        info["path"] = str(settings.store_dir / settings.collection)
    emit(info, as_json, "\n".join(f"{k}: {v}" for k, v in info.items()))


@store_app.command("reindex")
def store_reindex(as_json: JsonOpt = False) -> None:
    """Rebuild a store written before hybrid search (dense vectors only) or with an older BM25 text encoding with
    today's BM25 sparse vectors, from the stored texts and vectors: nothing is re-embedded. A no-op on a current
    store."""
    setup_logging()
    from finassist.store import StoreError, open_store

    settings = load_settings()
    try:
        store = open_store(settings)
        was_old = store.schema_problem() is not None
        n = store.reindex()
    except StoreError as e:
        fail(str(e))
    human = f"rebuilt {n} points with dense and BM25 vectors" if was_old else "the store is current: nothing to do"
    emit({"reindexed": n, "points": store.count(), "collection": settings.collection}, as_json, human)


@store_app.command("reset")
def store_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False, as_json: JsonOpt = False
) -> None:
    """Delete the collection (needed after changing the embedding model or chunking)."""
    setup_logging()
    from finassist.store import StoreError, open_store

    settings = load_settings()
    if not yes and not typer.confirm(f"delete collection {settings.collection!r} and all its points?"):
        raise typer.Exit(1)
    try:
        open_store(settings).drop()
    except StoreError as e:
        fail(str(e))
    emit({"dropped": settings.collection}, as_json, f"dropped {settings.collection}")
