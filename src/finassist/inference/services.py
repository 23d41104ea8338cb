"""What the API serves with, loaded once per process: the LLM, the RAG chain, the tracer, the metrics; the
background tasks that run beside it (the in-process feature pipeline, the champion watcher), whose state is part of
readiness; and the swap of the served model (`champion.py`) with the leases that let answers under way finish on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from finassist.config import Settings
from finassist.inference.chain import RAGChain, RunRecord
from finassist.inference.champion import ChampionWatcher, follows_alias
from finassist.inference.errors import ApiError
from finassist.inference.monitoring import Metrics, Tracer, redact, secret_values
from finassist.llm import LLM
from finassist.symbols import load_aliases

log = logging.getLogger(__name__)


@dataclass
class BackgroundTask:
    """A daemon thread beside the API (e.g. `serve --ingest-file`'s pipeline); a failed one makes the API unready:
    answers would go stale without anyone noticing."""

    name: str
    run: Callable[[], Any]
    state: Literal["starting", "running", "finished", "failed"] = "starting"
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"state": self.state} | ({"error": self.error} if self.error else {})


@dataclass
class Services:
    """Everything a request needs, loaded once per process; `ready` is set when it is all there."""

    settings: Settings
    llm: LLM | None = None
    chain: RAGChain | None = None
    tracer: Tracer | None = None
    metrics: Metrics = field(default_factory=Metrics)
    error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    background: list[BackgroundTask] = field(default_factory=list)
    watcher: ChampionWatcher | None = None
    _leases: dict[int, int] = field(default_factory=dict)  # id(chain) -> answers under way on it
    _retired: dict[int, RAGChain] = field(default_factory=dict)  # swapped out, closed when its last answer ends
    _lease_lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> None:
        from finassist.embed import get_embedder
        from finassist.llm import open_llm
        from finassist.retrieval import Retriever
        from finassist.store import open_store, search_mode

        try:
            s = self.settings
            store = open_store(s)
            embedder = get_embedder(s.embedding_model, s.embedding_device)
            self.llm = self.llm or open_llm(s)
            aliases = load_aliases(s.symbol_aliases)
            retriever = Retriever(store, embedder, search_mode(s))
            self.chain = RAGChain(retriever, self.llm, s, aliases, on_finish=self._finished)
            self.ready.set()
            log.info("ready: %s (adapter: %s)", self.llm.info.model, self.llm.info.adapter or "none")
            self.watcher = ChampionWatcher(self, s.champion_poll_s)
            if s.champion_poll_s > 0 and follows_alias(s.adapter_spec):
                self.start_background(self.watcher.run, "champion-watcher")
            # After readiness: a slow or unreachable tracking server (MLflow retries for minutes) must not hold
            # the API back; requests answered before it is set up are not traced.
            self.tracer = self._tracer() if s.tracing else None
        except Exception as exc:  # shown by /readyz: without any configured secret a message might quote
            self.error = self.redact(exc)
            log.error("loading failed: %s", self.error)

    def redact(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", secret_values(self.settings))

    def _tracer(self) -> Tracer | None:
        """Monitoring is not worth an outage: without a reachable tracking store the API serves untraced."""
        try:
            return Tracer(self.settings, self.llm.info)  # type: ignore[union-attr]
        except Exception as exc:
            scheme = self.settings.tracking_uri.split(":", 1)[0]  # not the URI: it may carry credentials
            log.error("tracing disabled: cannot use the MLflow %s store (%s)", scheme, type(exc).__name__)
            return None

    def _finished(self, run: RunRecord) -> None:
        self.metrics.observe_run(run)
        if self.tracer is not None:
            self.tracer.record(run)

    def require_chain(self) -> RAGChain:
        if self.chain is None:
            message = self.error or "still loading the model and the store"
            raise ApiError(503, message, "not_ready", {"Retry-After": "2"})
        return self.chain

    # --- the served model: leases and swaps -------------------------------------------------------------
    def lease(self) -> RAGChain:
        """The chain to answer one request with; it stays open until `release` even if a swap happens meanwhile."""
        with self._lease_lock:
            chain = self.require_chain()
            self._leases[id(chain)] = self._leases.get(id(chain), 0) + 1
            return chain

    def release(self, chain: RAGChain) -> None:
        with self._lease_lock:
            left = self._leases[id(chain)] = self._leases.get(id(chain), 1) - 1
            if left == 0:
                del self._leases[id(chain)]
            retired = self._retired.pop(id(chain), None) if left == 0 else None
        if retired is not None:
            self._close(retired)

    def swap(self, llm: LLM) -> None:
        """Serve `llm` from now on (same retriever, settings and callbacks); the old model closes when the answers
        leased on it have ended."""
        old = self.require_chain()
        chain = RAGChain(old.retriever, llm, self.settings, old.aliases, on_finish=self._finished)
        with self._lease_lock:
            self.chain, self.llm = chain, llm
            busy = self._leases.get(id(old), 0) > 0
            if busy:
                self._retired[id(old)] = old
        if not busy:
            self._close(old)

    def in_use(self) -> list[str | None]:
        """The adapters serving: the current one first, then swapped-out ones still finishing answers."""
        with self._lease_lock:
            return [self.llm.info.adapter if self.llm else None] + [c.llm.info.adapter for c in self._retired.values()]

    @staticmethod
    def _close(chain: RAGChain) -> None:
        try:
            chain.llm.close()
        except Exception:
            log.exception("closing the swapped-out model failed")
        log.info("closed the swapped-out model (adapter: %s)", chain.llm.info.adapter or "none")

    # --- background tasks ------------------------------------------------------------------------------------
    def start_background(self, run: Callable[[], Any], name: str | None = None) -> BackgroundTask:
        task = BackgroundTask(name or getattr(run, "__name__", "background"), run)
        self.background.append(task)
        threading.Thread(target=self._run_background, args=(task,), name=task.name, daemon=True).start()
        return task

    def _run_background(self, task: BackgroundTask) -> None:
        task.state = "running"
        try:
            task.run()
        except BaseException as exc:
            task.error = self.redact(exc)
            task.state = "failed"
            log.exception("background task %s stopped", task.name)
        else:
            task.state = "finished"

    def failed_background(self) -> list[BackgroundTask]:
        return [t for t in self.background if t.state == "failed"]
