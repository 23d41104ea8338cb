"""`finassist quickstart` (what `make run` does): the three pipelines on embedded defaults, then the API.

Each phase is the user-facing command in its own process, so what runs here is what the README documents, and each
is idempotent: a second run re-ingests nothing, reuses the cached teacher answers (same dataset version unless the
news or questions changed), the finished training run and its evaluation, and the registered version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from finassist.cli.common import app, fail, load_settings, setup_logging

QUICK_QUESTION = "Which company raised its revenue outlook, and by how much?"


def _phase(name: str, args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    typer.echo(f"\n== {name}: finassist {' '.join(args)}", err=True)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "finassist.cli", *args, "--json"], stdout=subprocess.PIPE,
                          text=True, env=env)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        fail(f"phase {name} failed (exit {proc.returncode}); its error is above", proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1]), seconds


def _describe(name: str, r: dict[str, Any]) -> str:
    if name == "ingest":
        return (f"{r['articles_written']} articles written, {r['articles_unchanged']} unchanged, "
                f"{r['quarantined']} quarantined")
    if name == "dataset":
        return (f"version {r['version']} ({'new' if r['new_version'] else 'unchanged'}): {r['train']} train / "
                f"{r['eval']} eval, {r['generated']} answers generated, {r['reused']} reused")
    if name == "train":
        m = r["metrics"]
        return ("reused " if r.get("reused") else "") + (
            f"run {r['run_id'][:8]}: {m['train_steps']} steps, train loss {m['train_loss']:.3f}"
            + (f", eval loss {m['eval_loss']:.3f}" if "eval_loss" in m else ""))
    if name == "evaluate":
        b, t = r["base"], r["tuned"]
        return ("reused: " if r.get("reused") else "") + (
            f"perplexity {b['perplexity']:.2f} -> {t['perplexity']:.2f}, ROUGE-L {b['rouge_l']:.3f} -> "
            f"{t['rouge_l']:.3f}, grounded {b['groundedness']:.0%} -> {t['groundedness']:.0%} "
            f"({r['examples']} held-out)")
    p = r.get("promotion", {})
    return f"{r['registered']['name']}/{r['registered']['version']}: " + (
        ("champion" if p.get("promoted") else "not promoted") + f" ({p.get('reason', '')})")


def upgrade_store(settings) -> int:
    """The one-command path upgrades a store an older finassist wrote (`finassist store reindex`, no re-embedding),
    where the single commands stop and say so. Returns the points rebuilt (0: already current)."""
    from finassist.store import StoreError, close_stores, open_store

    try:
        store = open_store(settings)
        return store.reindex() if store.schema_problem() else 0
    except StoreError as e:
        fail(str(e))
    finally:
        close_stores()


@app.command("quickstart")
def quickstart(
    news: Annotated[Path, typer.Option(help="News to ingest (JSONL, Alpaca schema).")] = Path(
        "data/sample_news.jsonl"),
    questions: Annotated[int, typer.Option(min=2, help="Training questions to have the teacher answer.")] = 16,
    k: Annotated[int, typer.Option(min=1, max=20, help="News per training prompt (fewer = faster CPU training).")] = 3,
    config: Annotated[Path | None, typer.Option(help="Training config YAML; default the packaged CPU one.")] = None,
    eval_examples: Annotated[int, typer.Option(min=1, help="Held-out examples to evaluate on.")] = 6,
    eval_tokens: Annotated[int, typer.Option(min=1, help="Answer length when evaluating.")] = 64,
    question: Annotated[str, typer.Option("--ask", help="The example question asked through the API.")] = (
        QUICK_QUESTION),
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="End by serving the API and UI.")] = True,
) -> None:
    """Ingest → dataset → train → evaluate → register/promote → serve, timing each phase (what `make run` does)."""
    setup_logging()
    settings = load_settings()
    if not news.is_file():
        fail(f"no such news file: {news}")
    config = config or Path(__file__).resolve().parents[1] / "training" / "cpu.yaml"
    env = {**os.environ, "FINASSIST_TEACHER_MAX_TOKENS": os.environ.get("FINASSIST_TEACHER_MAX_TOKENS", "128")}
    # The 10-minute profile: unless a teacher is configured, the student answers its own training questions (a
    # larger installed catalog model on the transformers backend would take far longer; the manifest says so).
    if not (env.get("FINASSIST_TEACHER_MODEL") or env.get("FINASSIST_TEACHER_BASE_URL")):
        env["FINASSIST_TEACHER_MODEL"] = "student"
    phases = [
        ("ingest", ["ingest", "file", str(news)]),
        ("dataset", ["dataset", "generate", "--limit", str(questions), "--k", str(k)]),
        ("train", ["train", "--config", str(config), "--reuse"]),
        ("evaluate", ["evaluate", "--limit", str(eval_examples), "--max-tokens", str(eval_tokens), "--reuse"]),
        ("register", ["model", "register", "--promote"]),
    ]
    timings: list[tuple[str, float, str]] = []
    upgraded = upgrade_store(settings)
    if upgraded:
        typer.echo(f"feature store rebuilt in today's schema ({upgraded} points, `finassist store reindex`)", err=True)
    for name, args in phases:
        result, seconds = _phase(name, args, env)
        timings.append((name, seconds, _describe(name, result)))

    def summary(serve_seconds: float | None = None) -> None:
        rows = timings + ([("serve", serve_seconds, "model and store loaded, example answered")]
                          if serve_seconds is not None else [])
        total = sum(s for _, s, _ in rows)
        lines = ["", "finassist quickstart: phase timings"]
        lines += [f"  {name:<9} {seconds:7.1f} s  {what}" for name, seconds, what in rows]
        lines.append(f"  {'total':<9} {total:7.1f} s  (home: {settings.home.resolve()})")
        typer.echo("\n".join(lines))

    if not serve_api:
        summary()
        return
    from finassist.cli.serve import run_server

    started = time.monotonic()
    run_server(settings, ask_question=question, after_answer=lambda: summary(time.monotonic() - started))
