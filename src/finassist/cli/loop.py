"""`finassist loop`: continuous training. Each check decides whether a cycle is due (training/loop.py); a cycle runs
the training pipeline's commands and is recorded as one MLflow run with a child run per phase."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from finassist.cli.common import JsonOpt, app, fail, load_settings, setup_logging


def _count_articles(settings) -> int:
    from finassist.store import close_stores, open_store

    try:
        return open_store(settings).count(articles=True)
    finally:
        close_stores()  # the dataset phase opens the (embedded) store in its own process


def served_quality(url: str, settings):
    """Serving's rolling groundedness from its Prometheus /metrics (None, with a log line, when unreadable: a down
    API must not stop training on news)."""
    import logging

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from finassist.training.loop import ServedQuality

    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=10)
        response.raise_for_status()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name in ("finassist_groundedness", "finassist_groundedness_answers"):
                    values[sample.name] = sample.value
    except (httpx.HTTPError, ValueError) as exc:
        logging.getLogger(__name__).warning("cannot read served groundedness from %s: %s", url, exc)
        return None
    if "finassist_groundedness" not in values:
        logging.getLogger(__name__).warning("%s has no finassist_groundedness gauge (not a finassist API?)", url)
        return None
    return ServedQuality(values["finassist_groundedness"], int(values.get("finassist_groundedness_answers", 0)))


def _numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a phase's JSON result, as MLflow metric names."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, int | float):
        return {prefix.rstrip("."): float(value)} if prefix else {}
    if isinstance(value, dict):
        for k, v in value.items():
            out |= _numbers(v, f"{prefix}{k}.")
    return out


class _Recorder:
    """The cycle as an MLflow run in LOOP_EXPERIMENT; each phase a child run with its numbers and seconds."""

    def __init__(self, settings, cycle: int, trigger: str, interrupted: str | None = None):
        from finassist.training.loop import LOOP_EXPERIMENT
        from finassist.training.tracking import experiment_id, mlflow_client

        self.mlflow, self.client = mlflow_client(settings)
        self.experiment = experiment_id(settings, LOOP_EXPERIMENT)
        tags = {"cycle": str(cycle), "trigger": trigger, **({"resumes": interrupted} if interrupted else {})}
        self.parent = self.client.create_run(self.experiment, run_name=f"cycle {cycle}", tags=tags)
        self.run_id = self.parent.info.run_id
        if interrupted:  # the attempt that died mid-cycle: its run can no longer finish by itself
            with contextlib.suppress(Exception):
                self.client.set_terminated(interrupted, "KILLED")

    def phase(self, name: str, result: dict[str, Any], seconds: float) -> None:
        child = self.client.create_run(self.experiment, run_name=name,
                                       tags={"mlflow.parentRunId": self.run_id, "phase": name})
        metrics = {k: v for k, v in _numbers(result).items() if len(k) <= 250}
        for key, value in {**metrics, "seconds": seconds}.items():
            self.client.log_metric(child.info.run_id, key, value)
        self.client.log_text(child.info.run_id, json.dumps(result, indent=1, default=str), f"{name}.json")
        self.client.set_terminated(child.info.run_id)

    def finish(self, decision: str, detail: str, failed: bool = False) -> None:
        self.client.set_tag(self.run_id, "decision", decision)
        self.client.set_tag(self.run_id, "detail", detail[:5000])
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


@app.command("loop")
def loop_command(
    once: Annotated[bool, typer.Option("--once", help="Check (and run a due cycle) once, then exit.")] = False,
    every: Annotated[str | None, typer.Option(help="Also run when this long has passed since the last cycle (6h, "
                                                   "30m). Without --once: also how often to check.")] = None,
    now: Annotated[bool, typer.Option("--now", help="Run a cycle now, whatever the triggers say.")] = False,
    min_new: Annotated[int, typer.Option(
        "--min-new-articles", min=1, help="Run when the store has this many new articles since the last dataset."
    )] = 20,
    questions: Annotated[int | None, typer.Option(min=1, help="Training questions per dataset (default all).")] = None,
    k: Annotated[int | None, typer.Option(min=1, max=20, help="News per training prompt.")] = None,
    config: Annotated[Path | None, typer.Option(help="Training config YAML.")] = None,
    eval_examples: Annotated[int | None, typer.Option(min=1, help="Held-out examples to evaluate on.")] = None,
    eval_tokens: Annotated[int, typer.Option(min=1, max=1024, help="Answer length when evaluating.")] = 96,
    poll: Annotated[float, typer.Option(min=1, help="Seconds between checks without --once.")] = 300,
    news_questions: Annotated[int, typer.Option(
        min=0, max=1000, help="Questions about the newest articles added to each dataset (0: the fixed set only)."
    )] = 8,
    teacher_budget: Annotated[int | None, typer.Option(
        min=0, help="Teacher calls per cycle at most (a paid endpoint); questions beyond it wait for the next cycle."
    )] = None,
    min_groundedness: Annotated[float | None, typer.Option(
        min=0, max=1, help="Also run when serving's rolling groundedness (its /metrics) is below this, over at least "
        "20 answers, an hour or more after the last cycle."
    )] = None,
    metrics_url: Annotated[str | None, typer.Option(
        help="Serving's /metrics for --min-groundedness (default http://FINASSIST_API_HOST:FINASSIST_API_PORT/metrics)."
    )] = None,
    as_json: JsonOpt = False,
) -> None:
    """Continuous training: when the news has grown (or --every has passed, or served groundedness fell below
    --min-groundedness), run dataset → train → evaluate → register → gated promote; one line per decision."""
    setup_logging()
    from finassist.store import StoreError
    from finassist.training.loop import (
        CycleOptions,
        CycleResult,
        LoopBusyError,
        PhaseError,
        cycle_lock,
        due,
        load_state,
        parse_every,
        run_cycle,
        run_phase,
    )

    settings = load_settings()
    try:
        every_s = parse_every(every) if every else None
    except ValueError as e:
        fail(str(e))
    options = CycleOptions(questions, k, config, eval_examples, eval_tokens, teacher_budget, news_questions)
    quality_url = metrics_url or f"http://{settings.api_host}:{settings.api_port}/metrics"
    folder = settings.home / "loop"
    state_path = folder / "state.json"
    stop = {"requested": False}

    def interrupt(signum, frame) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (the phase process dies with the loop)
        stop["requested"] = True
        typer.echo("stopping after the current phase (Ctrl-C again to stop now)", err=True)

    signal.signal(signal.SIGINT, interrupt)

    def report(result: CycleResult) -> None:
        if as_json:
            typer.echo(json.dumps({**result.__dict__, "line": result.line()}, default=str))
        else:
            typer.echo(result.line())

    def check(force: bool) -> CycleResult | None:
        with cycle_lock(folder / "lock"):
            state = load_state(state_path)
            articles = _count_articles(settings)
            quality = served_quality(quality_url, settings) if min_groundedness is not None else None
            run, why = due(state, articles, time.time(), min_new, every_s, force, quality, min_groundedness)
            if not run:
                return CycleResult(state.cycles, why, "skipped", why)
            resumed = state.in_progress or {}
            recorder = _Recorder(settings, resumed.get("cycle", state.cycles + 1), why, resumed.get("run_id"))
            try:
                result = run_cycle(state, state_path, why, articles, options, run_phase, lambda: stop["requested"],
                                   recorder.phase, recorder.run_id)
            except PhaseError as e:
                recorder.finish("failed", str(e), failed=True)
                raise
            recorder.finish(result.decision, result.detail)
            return result

    try:
        force = now
        while True:
            result = check(force)
            force = False
            if result is not None:
                report(result)
            if once or stop["requested"]:
                return
            time.sleep(min(poll, every_s or poll))
    except LoopBusyError as e:
        fail(str(e))
    except PhaseError as e:
        fail(f"cycle failed: {e}; the next start runs it again", 1)
    except (StoreError, ValueError) as e:
        fail(str(e))
