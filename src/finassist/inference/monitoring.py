"""Prompt monitoring and metrics: every answered request becomes an MLflow trace; Prometheus counters for /metrics.

A trace holds the inputs, the retrieved article ids and scores, the final prompt, the answer, real token counts, a
span per step with its own timing, the model, adapter and prompt version. Known secret values (API keys) are
replaced by "***" anywhere they would appear. Tracing never fails a request: errors are logged and dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from finassist.config import Settings
from finassist.inference.chain import RunRecord
from finassist.llm import ModelInfo

log = logging.getLogger(__name__)

EXPERIMENT = "finassist-serving"
GROUNDEDNESS_WINDOW = 100  # answers the rolling groundedness gauge covers
REDACTED = "***"


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret, for redaction (short values are skipped: they would redact ordinary words)."""
    secrets = [settings.api_key, settings.llm_api_key, settings.qdrant_api_key, settings.alpaca_api_key]
    secrets.append(settings.alpaca_api_secret)
    return [s.get_secret_value() for s in secrets if s is not None and len(s.get_secret_value()) >= 6]


def redact(value: Any, secrets: Iterable[str]) -> Any:
    secrets = list(secrets)
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


class Tracer:
    """Writes one MLflow trace per request (sqlite under FINASSIST_HOME by default, or FINASSIST_MLFLOW_URI)."""

    def __init__(self, settings: Settings, info: ModelInfo):
        import mlflow
        from mlflow import MlflowClient

        self.info = info
        self.secrets = secret_values(settings)
        settings.home.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(settings.tracking_uri)
        client = MlflowClient(settings.tracking_uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            self.experiment_id = client.create_experiment(EXPERIMENT, artifact_location=settings.artifact_location)
        else:
            self.experiment_id = experiment.experiment_id
        self.uri = settings.tracking_uri
        self._lock = threading.Lock()

    def record(self, run: RunRecord) -> str | None:
        """Write the trace of one finished (or failed) request; returns its trace id."""
        try:
            with self._lock:
                return self._record(run)
        except Exception:  # monitoring must never fail the request it watches
            log.exception("could not write the trace of request %s", run.id)
            return None

    def _record(self, run: RunRecord) -> str:
        import mlflow
        from mlflow.entities import SpanType

        r = run.request
        inputs = {
            "question": r.question,
            "about_me": r.about_me,
            "history": [t.model_dump() for t in r.history],
            "symbols": r.symbols,
            "since": r.since.isoformat() if r.since else None,
            "k": r.k,
        }
        info = run.model or self.info  # the model this answer was generated with (serving may have swapped since)
        root = mlflow.start_span_no_context(
            "ask",
            span_type=SpanType.CHAIN,
            inputs=redact(inputs, self.secrets),
            attributes={
                "request_id": run.id,
                "model": info.model,
                "adapter": info.adapter or "",
                "backend": info.backend,
                "prompt_version": run.prompt.version if run.prompt else (info.prompt_version or ""),
            },
            experiment_id=self.experiment_id,
            start_time_ns=run.start_ns,
        )
        end_ns = run.start_ns
        for step in run.steps:
            span_type, outputs, attributes = self._step_details(step.name, run)
            child = mlflow.start_span_no_context(
                step.name, span_type=span_type, parent_span=root, start_time_ns=step.start_ns,
                inputs=redact(self._step_inputs(step.name, run), self.secrets),
            )
            step_end = step.end_ns or max(step.start_ns, end_ns)
            child.end(
                outputs=redact(outputs, self.secrets),
                attributes=attributes,
                status="OK" if step.end_ns else "ERROR",
                end_time_ns=step_end,
            )
            end_ns = max(end_ns, step_end)
        answer = run.answer
        root.end(
            outputs=redact(answer.model_dump(mode="json"), self.secrets) if answer else None,
            attributes={
                "symbols_filter": run.symbols,
                "notes": run.notes,
                "error": redact(run.error or "", self.secrets),
                "prompt_tokens": answer.usage.prompt_tokens if answer else 0,
                "completion_tokens": answer.usage.completion_tokens if answer else 0,
                "latency_ms": answer.latency_ms if answer else 0,
                "grounded": "" if run.grounded is None else run.grounded,
            },
            status="ERROR" if run.error else "OK",
            end_time_ns=max(end_ns, run.start_ns + 1),
        )
        return root.trace_id

    @staticmethod
    def _step_inputs(name: str, run: RunRecord) -> Any:
        if name == "retrieve":
            return {"query": run.request.question, "symbols": run.symbols, "k": run.request.k}
        if name == "generate" and run.prompt is not None:
            return {"messages": run.prompt.messages}
        return None

    @staticmethod
    def _step_details(name: str, run: RunRecord) -> tuple[str, Any, dict[str, Any]]:
        from mlflow.entities import SpanType

        if name == "retrieve":
            hits = [{"article_id": h.article_id, "score": round(h.score, 4), "headline": h.headline} for h in run.hits]
            return SpanType.RETRIEVER, hits, {"hits": len(hits)}
        if name == "prompt":
            p = run.prompt
            if p is None:
                return SpanType.PARSER, None, {}
            attributes = {
                "prompt_version": p.version,
                "prompt_tokens": p.tokens,
                "context_articles": [h.article_id for h in p.context],
                "dropped_context": p.dropped_context,
                "dropped_turns": p.dropped_turns,
            }
            return SpanType.PARSER, {"messages": p.messages}, attributes
        g = run.generation
        if g is None:
            return SpanType.LLM, None, {}
        attributes = {
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
            "finish_reason": g.finish_reason,
            "first_token_ms": round(g.first_token_s * 1000, 1) if g.first_token_s is not None else None,
            "tokens_per_s": round(g.completion_tokens / g.seconds, 2) if g.seconds else None,
        }
        return SpanType.LLM, {"answer": g.text}, attributes

    def flush(self) -> None:
        import mlflow

        try:
            mlflow.flush_trace_async_logging()
        except Exception:
            log.exception("could not flush traces")


class Metrics:
    """Prometheus metrics, in a registry of the app's own (several apps in one process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "finassist_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "finassist_request_seconds",
            "Request latency (streamed answers: until the last token)",
            ["endpoint"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.first_token = Histogram(
            "finassist_first_token_seconds",
            "Time to the first answer token",
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
            registry=self.registry,
        )
        self.tokens = Counter("finassist_tokens", "LLM tokens", ["kind"], registry=self.registry)
        self.retrieval_hits = Histogram(
            "finassist_retrieval_hits",
            "Articles retrieved per request",
            buckets=(0, 1, 2, 3, 4, 5, 8, 10, 20),
            registry=self.registry,
        )
        self.in_flight = Gauge("finassist_generations_in_flight", "Answers being generated", registry=self.registry)
        self.queued = Gauge(
            "finassist_requests_queued", "Requests waiting for a generation slot", registry=self.registry
        )
        self.rejected = Counter("finassist_rejected", "Requests refused as busy (503)", registry=self.registry)
        self.graded = Counter(
            "finassist_answers_graded", "Answers from news checked for groundedness", ["grounded"],
            registry=self.registry,
        )
        self.groundedness = Gauge(
            "finassist_groundedness",
            f"Share of grounded answers among the last {GROUNDEDNESS_WINDOW} answered from news (the training "
            "evaluation's metric: a fact of the cited news stated, no number absent from it)",
            registry=self.registry,
        )
        self.groundedness_answers = Gauge(
            "finassist_groundedness_answers", "Answers the groundedness gauge covers now", registry=self.registry
        )
        self._recent: deque[bool] = deque(maxlen=GROUNDEDNESS_WINDOW)
        self._recent_lock = threading.Lock()
        self.champion_swaps = Counter(
            "finassist_champion_swaps", "Served-model swaps after the registry alias moved", ["outcome"],
            registry=self.registry,
        )

    def observe_run(self, run: RunRecord) -> None:
        self.retrieval_hits.observe(len(run.hits))
        if run.grounded is not None:
            self.graded.labels(str(run.grounded).lower()).inc()
            with self._recent_lock:
                self._recent.append(run.grounded)
                self.groundedness.set(sum(self._recent) / len(self._recent))
                self.groundedness_answers.set(len(self._recent))
        if run.generation is not None:
            self.tokens.labels("prompt").inc(run.generation.prompt_tokens)
            self.tokens.labels("completion").inc(run.generation.completion_tokens)
            if run.generation.first_token_s is not None:
                self.first_token.observe(run.generation.first_token_s)
