"""The feature pipeline as a Bytewax dataflow: input → validate → clean → chunk → embed → upsert.

Each step is a pure function from `finassist.feature.*`; this module only wires them and owns the sink.
Micro-batching: `flat_map_batch` hands each step whatever batch arrived, so the embedder encodes chunks of many
articles in one call. All outcomes go to one writer partition, which owns the store: with the embedded store only one
process may open it, and one writer also serialises versions of the same article.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from finassist.config import Settings
from finassist.domain import ChunkedArticle, CleanArticle, EmbeddedArticle, Quarantined, RawRecord
from finassist.embed import get_embedder
from finassist.feature.chunk import ChunkSpec, chunk_articles
from finassist.feature.clean import clean_article
from finassist.feature.guard import isolate, isolate_batch
from finassist.feature.validate import validate_record
from finassist.store import VectorStore, open_store

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Known:
    """An article whose version the store already has (or has newer): nothing to embed."""

    article_id: str
    stale: bool


@dataclass
class IngestStats:
    """Counters kept by the writer, which sees every article's outcome (so they are complete in a cluster too)."""

    written: int = 0
    unchanged: int = 0
    stale: int = 0
    quarantined: int = 0
    chunks: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def articles_ok(self) -> int:
        return self.written + self.unchanged + self.stale

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, Any]:
        return {
            "articles_in": self.articles_ok + self.quarantined,
            "articles_ok": self.articles_ok,
            "quarantined": self.quarantined,
            "chunks": self.chunks,
            "articles_written": self.written,
            "articles_unchanged": self.unchanged,
            "articles_stale": self.stale,
            "seconds": round(time.monotonic() - self.started, 3),
        }


# --- steps -------------------------------------------------------------------------------------------------------
def unless_quarantined(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Apply a per-item step to good items; quarantined ones pass through to the writer untouched."""

    def step(item: Any) -> Any:
        return item if isinstance(item, Quarantined | Known) else fn(item)

    return step


def on_batch(fn: Callable[[list[T]], list[Any]], kind: type) -> Callable[[list[Any]], list[Any]]:
    """Apply a batch step to the items of `kind` in a batch; everything else passes through in place."""

    def step(batch: list[Any]) -> list[Any]:
        todo = [x for x in batch if isinstance(x, kind)]
        if not todo:
            return batch
        done = iter(fn(todo))
        return [next(done) if isinstance(x, kind) else x for x in batch]

    return step


def skip_known(articles: list[CleanArticle], store: VectorStore) -> list[CleanArticle | Known]:
    """Drop articles whose version the store already holds before paying for their embedding."""
    stored = store.versions([a.article.id for a in articles])
    out: list[CleanArticle | Known] = []
    for a in articles:
        have = stored.get(a.article.id)
        out.append(a if have is None or a.article.version > have else Known(a.article.id, a.article.version < have))
    return out


def embed_articles(articles: list[ChunkedArticle], settings: Settings) -> list[EmbeddedArticle]:
    """One encode call for all chunks of all articles in the batch."""
    embedder = get_embedder(settings.embedding_model, settings.embedding_device)
    texts = [c.text for a in articles for c in a.chunks]
    vectors = embedder.encode(texts, batch_size=settings.embed_batch_size)
    out, i = [], 0
    for a in articles:
        n = len(a.chunks)
        out.append(EmbeddedArticle(a.clean, a.chunks, tuple(tuple(v) for v in vectors[i : i + n].tolist())))
        i += n
    return out


def chunk_step(articles: list[CleanArticle], settings: Settings) -> list[ChunkedArticle]:
    embedder = get_embedder(settings.embedding_model, settings.embedding_device)
    spec = ChunkSpec(settings.chunk_tokens, settings.chunk_overlap, embedder.max_seq_length)
    return chunk_articles(articles, embedder.tokenizer, spec, budget_s=settings.record_budget_s)


# --- the writer -------------------------------------------------------------------------------------------------
def quarantine_key(q: Quarantined) -> str:
    """The same bad record met again (a re-ingested file, a replay after a crash) is listed once."""
    return hashlib.sha256("\0".join((q.origin, q.step, q.raw)).encode("utf-8", "backslashreplace")).hexdigest()[:24]


def _known_quarantine_keys(path: Path) -> set[str]:
    keys: set[str] = set()
    if path.exists():
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    keys.add(json.loads(line)["key"])
                except (ValueError, KeyError, TypeError):
                    continue  # an entry from an older version, or a torn last line
    return keys


class _WriterPartition(StatefulSinkPartition[Any, None]):
    def __init__(self, settings: Settings, stats: IngestStats):
        self._store = open_store(settings)
        settings.home.mkdir(parents=True, exist_ok=True)
        path = Path(settings.quarantine_path)
        self._quarantined = _known_quarantine_keys(path)
        self._quarantine = path.open("a", encoding="utf-8")
        self._stats = stats

    def write_batch(self, values: list[Any]) -> None:
        articles = [v for v in values if isinstance(v, EmbeddedArticle)]
        bad = [v for v in values if isinstance(v, Quarantined)]
        known = [v for v in values if isinstance(v, Known)]
        for q in bad:
            key = quarantine_key(q)
            if key not in self._quarantined:
                self._quarantined.add(key)
                self._quarantine.write(json.dumps({"key": key, **q.to_json()}, ensure_ascii=False) + "\n")
        if bad:
            self._quarantine.flush()
        result = self._store.write(articles)
        log.info("wrote %d articles (%d chunks), %d quarantined", len(result.written), result.points, len(bad))
        self._stats.add(
            written=len(result.written),
            unchanged=len(result.unchanged) + sum(not k.stale for k in known),
            stale=len(result.stale) + sum(k.stale for k in known),
            quarantined=len(bad),
            chunks=result.points,
        )

    def snapshot(self) -> None:
        # Called at each epoch's end, before Bytewax commits the input offsets: make the writes durable first.
        self._store.flush()
        self._quarantine.flush()

    def close(self) -> None:
        self._store.flush()
        self._quarantine.close()


class StoreWriter(FixedPartitionedSink[Any, None]):
    """A single partition: whichever worker owns it is the store's one writer."""

    def __init__(self, settings: Settings, stats: IngestStats):
        self._settings = settings
        self._stats = stats

    def list_parts(self) -> list[str]:
        return ["store"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _WriterPartition:
        return _WriterPartition(self._settings, self._stats)


# --- wiring -----------------------------------------------------------------------------------------------------
def build_flow(
    source: Source[RawRecord], settings: Settings, stats: IngestStats, skip_known_versions: bool
) -> Dataflow:
    """The dataflow, reading like the architecture picture."""
    flow = Dataflow("finassist_ingest")
    records = op.input("input", flow, source)
    records = op.redistribute("spread", records)
    # Every per-record step is isolated: whatever a record raises (or a stall past its budget) quarantines that
    # record alone. The store steps are not: a store failure is not the data's, and the run resumes after it.
    validate = isolate("validate", partial(validate_record, max_bytes=settings.max_article_bytes))
    articles = op.map("validate", records, validate)
    clean_one = isolate("clean", partial(clean_article, budget_s=settings.record_budget_s))
    clean = op.map("clean", articles, unless_quarantined(clean_one))
    if skip_known_versions:
        clean = op.flat_map_batch(
            "skip_known", clean, on_batch(partial(skip_known, store=open_store(settings)), CleanArticle)
        )
    chunk = isolate_batch("chunk", partial(chunk_step, settings=settings))
    chunked = op.flat_map_batch("chunk", clean, on_batch(chunk, CleanArticle))
    embed = isolate_batch("embed", partial(embed_articles, settings=settings))
    embedded = op.flat_map_batch("embed", chunked, on_batch(embed, ChunkedArticle))
    to_writer = op.key_on("to_writer", embedded, lambda _: "store")
    op.output("upsert", to_writer, StoreWriter(settings, stats))
    return flow


def run_flow(
    source: Source[RawRecord],
    settings: Settings,
    job: str,
    *,
    workers: int = 1,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    on_progress: Callable[[IngestStats], None] | None = None,
    stats: IngestStats | None = None,
) -> IngestStats:
    """Run the dataflow to completion (or interruption) with Bytewax recovery under FINASSIST_HOME/recovery/<job>.

    A crashed run resumes from the last epoch's input offsets when the same command runs again; the writes replayed
    since that epoch are idempotent (deterministic point ids, version checks). A run that completes removes its
    recovery state, so running it again re-reads the input (and finds nothing new to write).
    """
    from bytewax.errors import BytewaxRuntimeError
    from bytewax.recovery import RecoveryConfig
    from bytewax.run import cli_main

    stats = stats if stats is not None else IngestStats()
    # Load the model before the dataflow starts: loading inside a step would stall epochs (and so recovery
    # snapshots) for the seconds it takes.
    get_embedder(settings.embedding_model, settings.embedding_device)
    # The model stack is ~680k long-lived objects: out of the collector's reach they no longer slow every
    # collection, nor the interpreter's teardown after Ctrl-C (2.9 s idle, 10-15 s on a loaded machine → 0.5 s).
    gc.freeze()
    single_process = not addresses or len(addresses) == 1
    # Other processes of a cluster cannot open an embedded store that the writer's process owns.
    flow = build_flow(source, settings, stats, skip_known_versions=single_process or bool(settings.qdrant_url))
    recovery = _recovery_dir(settings, job)
    stop = threading.Event()
    reporter = None
    if on_progress is not None:

        def report() -> None:
            while not stop.wait(0.5):
                on_progress(stats)

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
    try:
        cli_main(
            flow,
            workers_per_process=workers,
            process_id=process_id,
            addresses=addresses,
            epoch_interval=timedelta(seconds=settings.epoch_seconds),
            recovery_config=RecoveryConfig(str(recovery)),
        )
    except BytewaxRuntimeError as e:
        # Bytewax reports Ctrl-C as a runtime error ("signal received", or a KeyboardInterrupt raised inside a step);
        # the run stopped and its recovery state stays, so the same command resumes.
        if _interrupted(e):
            raise KeyboardInterrupt from None
        raise
    finally:
        stop.set()
        if reporter is not None:
            reporter.join()
    if not process_id:
        shutil.rmtree(recovery, ignore_errors=True)
    return stats


def _interrupted(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt) or "signal received" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _recovery_dir(settings: Settings, job: str) -> Path:
    """Create (once, race-free across the processes of a cluster) the recovery partitions of a job."""
    from bytewax.recovery import init_db_dir

    root = settings.recovery_dir / job
    ready = root / "READY"
    try:
        root.mkdir(parents=True)
    except FileExistsError:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"recovery state {root} is incomplete; delete it to start the job afresh") from None
            time.sleep(0.05)
        return root
    init_db_dir(root, 1)
    ready.touch()
    return root


def job_key(kind: str, parts: Iterable[str], settings: Settings) -> str:
    """A stable name for an ingestion job: the same command on the same store resumes the same recovery state."""
    h = hashlib.sha256(
        "\0".join(
            [kind, settings.qdrant_url or str(settings.store_dir.resolve()), settings.collection, *parts]
        ).encode()
    )
    return f"{kind}-{h.hexdigest()[:16]}"
