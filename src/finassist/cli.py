"""`finassist` command line: wires the pipelines' entry points. With --json the last stdout line is one JSON value;
progress and logs go to stderr."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="finassist: a financial assistant on FTI pipelines.")
ingest_app = typer.Typer(no_args_is_help=True, help="Feature pipeline: news → Bytewax → Qdrant feature store.")
store_app = typer.Typer(no_args_is_help=True, help="Inspect or reset the feature store.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluations.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(store_app, name="store")
app.add_typer(eval_app, name="eval")
dataset_app = typer.Typer(no_args_is_help=True, help="Training data: questions + news → teacher answers → versions.")
app.add_typer(dataset_app, name="dataset")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON value as the last stdout line.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-w", min=1, help="Worker threads per process.")]
ProcOpt = Annotated[int | None, typer.Option("--process-id", "-i", min=0, help="This process's index in a cluster.")]
AddrOpt = Annotated[
    str | None, typer.Option("--addresses", "-a", help='Cluster addresses "host:port;host:port" (one per process).')
]

log = logging.getLogger("finassist")


def _settings():
    from finassist.config import Settings

    try:
        return Settings()
    except Exception as e:  # pydantic's ValidationError: make it a one-line user error
        _fail(f"invalid configuration: {e}")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _emit(value: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(value, default=str) + "\n")
        sys.stdout.flush()
    else:
        typer.echo(human if human is not None else json.dumps(value, indent=2, default=str))


def parse_when(value: str) -> datetime:
    """ISO date/datetime (naive = UTC), or a relative age such as 90m, 24h, 7d, 2w."""
    m = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}
        return datetime.now(UTC) - delta[unit]
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"not a date/time or age (e.g. 2026-09-01, 2026-09-01T13:30:00Z, 7d): {value!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _symbols(value: str | None) -> list[str]:
    return [s.strip().upper() for s in (value or "").split(",") if s.strip()]


def _cluster(process_id: int | None, addresses: str | None) -> tuple[int | None, list[str] | None]:
    addrs = [a.strip() for a in addresses.split(";") if a.strip()] if addresses else None
    if addrs and process_id is None:
        _fail("--addresses needs --process-id")
    if addrs and process_id is not None and process_id >= len(addrs):
        _fail(f"--process-id {process_id} is out of range for {len(addrs)} addresses")
    return process_id, addrs


def _setup_logging() -> None:
    level = os.environ.get("FINASSIST_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # MLflow announces migrations and queue flushes at INFO (it configures its logger itself, from this variable).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _run_ingest(source, settings, job: str, as_json: bool, workers, process_id, addresses) -> None:
    from finassist.feature.flow import IngestStats, run_flow
    from finassist.store import StoreError, open_store

    pid, addrs = _cluster(process_id, addresses)
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
        _fail(str(e))
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
    _emit(result, as_json, human)


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
    _setup_logging()
    from finassist.feature.flow import job_key
    from finassist.feature.sources.file import NewsFileSource

    settings = _settings()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        _fail(f"no such file: {', '.join(missing)}")
    if speed < 0:
        _fail("--speed must be >= 0")
    source = NewsFileSource(paths, batch_size=settings.batch_articles, speed=speed)
    job = job_key("file", [str(p.resolve()) for p in paths], settings)
    _run_ingest(source, settings, job, as_json, workers, process_id, addresses)


def _alpaca_settings():
    """Settings for an Alpaca source, failing early (and without echoing any value) when keys are missing."""
    from finassist.feature.sources.alpaca import alpaca_credentials

    _setup_logging()
    settings = _settings()
    try:
        alpaca_credentials(settings)
    except ValueError as e:
        _fail(str(e))
    return settings


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

    settings = _alpaca_settings()
    t0, t1 = parse_when(start), parse_when(end) if end else datetime.now(UTC)
    if t1 <= t0:
        _fail("--end must be after --start")
    _, addrs = _cluster(process_id, addresses)
    total_workers = (workers or settings.workers) * (len(addrs) if addrs else 1)
    syms = _symbols(symbols)
    source = AlpacaBackfillSource(settings, t0, t1, syms or None, slices=total_workers * 4)
    job = job_key("backfill", [t0.isoformat(), t1.isoformat(), ",".join(syms)], settings)
    _run_ingest(source, settings, job, as_json, workers, process_id, addresses)


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

    settings = _alpaca_settings()
    syms = _symbols(symbols)
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
    _setup_logging()
    from finassist.embed import get_embedder
    from finassist.retrieval import Retriever
    from finassist.store import StoreError, open_store

    settings = _settings()
    try:
        store = open_store(settings)
        retriever = Retriever(store, get_embedder(settings.embedding_model, settings.embedding_device))
        hits = retriever.retrieve(
            query,
            k=k,
            symbols=_symbols(symbols),
            since=parse_when(since) if since else None,
            until=parse_when(until) if until else None,
            per_article=not all_chunks,
        )
    except (StoreError, ValueError) as e:
        _fail(str(e))
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
    _emit(rows, as_json, human)


@eval_app.command("retrieval")
def eval_retrieval(
    beir_dir: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100)] = 10,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a BEIR corpus through the feature pipeline into a throw-away store and score retrieval."""
    _setup_logging()
    from finassist.feature.evaluate import evaluate_beir

    settings = _settings()
    try:
        result = evaluate_beir(beir_dir, settings, k=k, workers=workers or settings.workers)
    except FileNotFoundError as e:
        _fail(str(e))
    human = "\n".join(f"{name}: {value}" for name, value in result.items())
    _emit(result, as_json, human)


@store_app.command("info")
def store_info(as_json: JsonOpt = False) -> None:
    """Points and articles in the feature store."""
    _setup_logging()
    from finassist.store import StoreError, open_store

    settings = _settings()
    try:
        store = open_store(settings)
        info = {
            "backend": store.kind,
            "collection": settings.collection,
            "points": store.count(),
            "articles": store.count(articles=True),
            "dim": store.dim(),
        }
    except StoreError as e:
        _fail(str(e))
    if not settings.qdrant_url:
        info["path"] = str(settings.store_dir / settings.collection)
    _emit(info, as_json, "\n".join(f"{k}: {v}" for k, v in info.items()))


@store_app.command("reset")
def store_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False, as_json: JsonOpt = False
) -> None:
    """Delete the collection (needed after changing the embedding model or chunking)."""
    _setup_logging()
    from finassist.store import StoreError, open_store

    settings = _settings()
    if not yes and not typer.confirm(f"delete collection {settings.collection!r} and all its points?"):
        raise typer.Exit(1)
    try:
        open_store(settings).drop()
    except StoreError as e:
        _fail(str(e))
    _emit({"dropped": settings.collection}, as_json, f"dropped {settings.collection}")


def _pipeline_in_background(source, settings, job: str):
    """The streaming feature pipeline as a background task of the API process: the embedded store can be open in
    one process only, so the pipeline that keeps it fresh runs beside the API that reads it."""

    def run() -> None:
        from finassist.feature.flow import run_flow

        try:
            stats = run_flow(source, settings, job, workers=settings.workers)
            log.warning("feature pipeline finished: %s", stats.as_dict())
        except Exception:
            log.exception("feature pipeline stopped")

    run.__name__ = f"pipeline-{job[:24]}"
    return run


def _ask_once_ready(url: str, question: str, settings):
    """Once the server is ready, ask it one question over HTTP, like any client, and print the answer."""

    def run() -> None:
        import time

        import httpx

        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
        while True:  # the socket opens after startup, the model loads after that
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        try:
            r = httpx.post(f"{url}/v1/ask", json={"question": question}, headers=headers, timeout=300)
            r.raise_for_status()
        except httpx.HTTPError as e:
            typer.echo(f"example question failed: {e}", err=True)
            return
        answer = r.json()
        lines = [f"\nQ: {question}", f"A: {answer['answer']}", "Sources:"]
        lines += [
            f"  [{s['rank']}] {s['headline']} ({s['created_at'][:10]}, {','.join(s['symbols'])})"
            for s in answer["sources"]
        ]
        lines.append(f"({answer['latency_ms'] / 1000:.1f} s; chat UI: {url}/ ; Ctrl-C stops the server)\n")
        typer.echo("\n".join(lines))

    return run


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default FINASSIST_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FINASSIST_API_PORT).")] = None,
    ingest_file: Annotated[
        list[Path] | None, typer.Option("--ingest-file", help="Replay these news files into the store while serving.")
    ] = None,
    speed: Annotated[float, typer.Option(help="Replay pace for --ingest-file (0 = as fast as possible).")] = 0,
    ingest_stream: Annotated[
        bool, typer.Option("--ingest-stream", help="Follow Alpaca's news websocket while serving.")
    ] = False,
    ask_question: Annotated[
        str | None, typer.Option("--ask", help="Once ready, ask this question through the API and print the answer.")
    ] = None,
) -> None:
    """Serve the assistant: REST API, OpenAI-compatible endpoint and chat UI (optionally keeping the store fresh)."""
    _setup_logging()
    import uvicorn

    from finassist.feature.flow import job_key
    from finassist.inference.api import create_app

    settings = _alpaca_settings() if ingest_stream else _settings()
    background = []
    if ingest_file:
        from finassist.feature.sources.file import NewsFileSource

        missing = [str(p) for p in ingest_file if not p.is_file()]
        if missing:
            _fail(f"no such file: {', '.join(missing)}")
        source = NewsFileSource(ingest_file, batch_size=settings.batch_articles, speed=speed)
        job = job_key("file", [str(p.resolve()) for p in ingest_file], settings)
        background.append(_pipeline_in_background(source, settings, job))
    if ingest_stream:
        from finassist.feature.sources.alpaca_stream import AlpacaStreamSource

        job = job_key("stream", [""], settings)
        background.append(_pipeline_in_background(AlpacaStreamSource(settings, None), settings, job))
    host, port = host or settings.api_host, port or settings.api_port
    if ask_question:
        background.append(_ask_once_ready(f"http://{host}:{port}", ask_question, settings))
    typer.echo(f"finassist API on http://{host}:{port}  (chat UI: /, docs: /docs, ready: /readyz)", err=True)
    level = os.environ.get("FINASSIST_LOG_LEVEL", "WARNING").lower()
    uvicorn.run(create_app(settings, background=tuple(background)), host=host, port=port, log_level=level)


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    about_me: Annotated[str, typer.Option("--about-me", help="Who is asking: age, goals, risk appetite...")] = "",
    symbols: Annotated[str | None, typer.Option(help="Only news about these tickers (comma-separated).")] = None,
    since: Annotated[str | None, typer.Option(help="Only news created at/after: ISO date/time or age (7d).")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=20, help="News articles in the prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, max=4096, help="Answer length limit in tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question in-process with the same chain the API serves (streams the answer to the terminal)."""
    _setup_logging()
    from pydantic import ValidationError

    from finassist.inference.api import Services, as_api_error
    from finassist.inference.chain import Answer, AskInput

    settings = _settings()
    try:
        request = AskInput(
            question=question,
            about_me=about_me,
            symbols=_symbols(symbols) if symbols is not None else None,
            since=parse_when(since) if since else None,
            k=k,
            max_new_tokens=max_tokens,
        )
    except (ValidationError, ValueError) as e:
        _fail(str(e).splitlines()[0] if isinstance(e, ValueError) and not isinstance(e, ValidationError) else
              "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()))
    services = Services(settings)
    services.load()
    if services.chain is None:
        _fail(services.error or "could not load the model and the store")
    answer = None
    try:
        for item in services.chain.stream(request):
            if isinstance(item, Answer):
                answer = item
            elif not as_json:
                sys.stdout.write(item)
                sys.stdout.flush()
    except Exception as e:
        _fail(as_api_error(e).message)
    finally:
        if services.tracer is not None:
            services.tracer.flush()
    assert answer is not None
    if as_json:
        _emit(answer.model_dump(mode="json"), True)
        return
    typer.echo("\n\nSources:")
    for s in answer.sources:
        typer.echo(f"  [{s.rank}] {s.headline} ({s.created_at:%Y-%m-%d}, {','.join(s.symbols)}) {s.url}")
    typer.echo(
        f"({answer.model}{' + ' + answer.adapter if answer.adapter else ''}, prompt {answer.prompt_version}, "
        f"{answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens, {answer.latency_ms / 1000:.1f} s)",
        err=True,
    )



@dataset_app.command("generate")
def dataset_generate(
    questions_file: Annotated[
        Path | None, typer.Option("--questions", help="YAML of personas and questions; default the packaged set.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the teacher LLM each question with news context from the feature store; store a new dataset version."""
    _setup_logging()
    from finassist.embed import get_embedder
    from finassist.llm import LLMError
    from finassist.retrieval import Retriever
    from finassist.store import StoreError, open_store
    from finassist.symbols import load_aliases
    from finassist.training.dataset import generate_dataset, open_teacher, teacher_label
    from finassist.training.questions import load_questions
    from finassist.training.tracking import log_dataset

    settings = _settings()
    try:
        questions = load_questions(questions_file)
        store = open_store(settings)
        if store.count() == 0:
            _fail("the feature store is empty: ingest news first (finassist ingest file|backfill|stream)")
        retriever = Retriever(store, get_embedder(settings.embedding_model, settings.embedding_device))
        teacher = open_teacher(settings)
    except (ValueError, FileNotFoundError, StoreError, LLMError) as e:
        _fail(str(e))
    progress = None
    if not as_json and sys.stderr.isatty():

        def progress(done: int, total: int) -> None:
            sys.stderr.write(f"\rteacher answers: {done}/{total}   ")
            sys.stderr.flush()

    try:
        report = generate_dataset(
            settings, questions, retriever, teacher, teacher_label(settings, teacher),
            load_aliases(settings.symbol_aliases), limit=limit, on_progress=progress,
        )
    except LLMError as e:
        _fail(str(e))
    result = report.as_dict()
    result["mlflow_run_id"] = log_dataset(settings, result, Path(report.path))
    human = (
        f"dataset {report.version} ({'new' if report.new_version else 'unchanged'}): {report.train} train / "
        f"{report.eval} eval examples from {report.questions} questions; teacher {report.teacher}; "
        f"{report.generated} generated, {report.reused} reused; dropped {report.dropped_empty} empty, "
        f"{report.dropped_refusal} refusals, {report.dropped_duplicate} duplicates; {report.failed} failed\n"
        f"  {report.path}"
    )
    _emit(result, as_json, human)


@dataset_app.command("list")
def dataset_list(as_json: JsonOpt = False) -> None:
    """Stored dataset versions, newest first."""
    _setup_logging()
    from finassist.training.dataset import list_datasets

    rows = list_datasets(_settings())
    keys = ("version", "created_at", "train", "eval", "teacher", "prompt_version")
    rows = [{k: m.get(k) for k in keys} for m in rows]
    human = "\n".join(
        f"{r['version']}  {str(r['created_at'])[:19]}  {r['train']} train / {r['eval']} eval  "
        f"teacher {r['teacher']}  prompt {r['prompt_version']}"
        for r in rows
    ) or "no datasets yet: finassist dataset generate"
    _emit(rows, as_json, human)


@dataset_app.command("show")
def dataset_show(
    version: Annotated[str | None, typer.Argument(help="Version (or a unique prefix); default the newest.")] = None,
    examples: Annotated[int, typer.Option(min=0, help="Examples to print.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """A dataset version's manifest and a few examples."""
    _setup_logging()
    from finassist.training.dataset import load_dataset

    try:
        manifest, train, _ = load_dataset(_settings(), version)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    sample = [e.model_dump(mode="json", exclude={"context"}) | {"context": [h.article_id for h in e.context]}
              for e in train[:examples]]
    result = {**manifest, "examples": sample}
    _emit(result, as_json, json.dumps(result, indent=2, default=str))



@app.command("train")
def train_command(
    config_file: Annotated[Path | None, typer.Option("--config", help="YAML of training settings.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override one setting: --set max_steps=20 (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the base model with LoRA (QLoRA on CUDA) on a dataset version; tracked in MLflow."""
    _setup_logging()
    from pydantic import ValidationError

    from finassist.training.finetune import load_config, train

    settings = _settings()
    try:
        config = load_config(config_file, overrides or [])
    except (ValueError, ValidationError, OSError) as e:
        _fail(f"invalid training config: {e}")
    try:
        result = train(settings, config)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    m = result["metrics"]
    human = (
        f"run {result['run_id']}: {m['train_steps']} steps in {m['train_seconds']:.0f} s, train loss "
        f"{m['train_loss']:.3f}" + (f", eval loss {m['eval_loss']:.3f}" if "eval_loss" in m else "")
        + f"\n  adapter: {result['adapter_dir']}"
    )
    _emit(result, as_json, human)



@app.command("evaluate")
def evaluate_command(
    adapter: Annotated[Path | None, typer.Option(help="Adapter folder from `train`; omit: base only.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset version; default the adapter's.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N held-out examples.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=1024, help="Answer length when generating.")] = 96,
    as_json: JsonOpt = False,
) -> None:
    """Base vs fine-tuned on the held-out questions: perplexity, ROUGE-L, groundedness, LLM judge (with a teacher)."""
    _setup_logging()
    from finassist.llm import LLMError
    from finassist.training.dataset import open_teacher
    from finassist.training.evaluate import evaluate

    settings = _settings()
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        _fail(f"{adapter} is not an adapter folder (no adapter_config.json)")
    try:
        judge = open_teacher(settings) if (settings.teacher_model or settings.teacher_base_url) else None
        report = evaluate(settings, adapter, dataset, limit, max_tokens, judge)
    except (ValueError, FileNotFoundError, LLMError) as e:
        _fail(str(e))
    lines = [f"dataset {report['dataset_version']}"]
    for model in ("base", "tuned"):
        if model in report:
            r = report[model]
            judged = f", judge {r['judge']:.2f}" if "judge" in r else ""
            lines.append(f"{model:>5}: perplexity {r['perplexity']:.2f}, ROUGE-L {r['rouge_l']:.3f}, "
                         f"grounded {r['groundedness']:.0%}{judged} ({r['examples']} examples)")
    _emit(report, as_json, "\n".join(lines))


if __name__ == "__main__":
    app()
