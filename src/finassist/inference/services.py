"""What the API serves with, loaded once per process: the LLM, the RAG chain, the tracer, the metrics; and the
background tasks that run beside it (the in-process feature pipeline), whose state is part of readiness."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from finassist.config import Settings
from finassist.inference.chain import RAGChain, RunRecord
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
            # After readiness: a slow or unreachable tracking server (MLflow retries for minutes) must not hold
            # the API back; requests answered before it is set up are not traced.
            self.tracer = self._tracer() if s.tracing else None
        except Exception as exc:  # shown by /readyz: without any configured secret a message might quote
            self.error = self._redact(exc)
            log.error("loading failed: %s", self.error)

    def _redact(self, exc: BaseException) -> str:
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

    # --- background tasks ------------------------------------------------------------------------------------
    def start_background(self, run: Callable[[], Any]) -> BackgroundTask:
        task = BackgroundTask(getattr(run, "__name__", "background"), run)
        self.background.append(task)
        threading.Thread(target=self._run_background, args=(task,), name=task.name, daemon=True).start()
        return task

    def _run_background(self, task: BackgroundTask) -> None:
        task.state = "running"
        try:
            task.run()
        except BaseException as exc:
            task.error = self._redact(exc)
            task.state = "failed"
            log.exception("background task %s stopped", task.name)
        else:
            task.state = "finished"

    def failed_background(self) -> list[BackgroundTask]:
        return [t for t in self.background if t.state == "failed"]
