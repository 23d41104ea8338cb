"""Training commands: dataset generate|list|show, train, evaluate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from finassist.cli.common import (
    JsonOpt,
    app,
    dataset_app,
    emit,
    fail,
    load_settings,
    setup_logging,
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
    setup_logging()
    from finassist.embed import get_embedder
    from finassist.llm import LLMError
    from finassist.retrieval import Retriever
    from finassist.store import StoreError, open_store
    from finassist.symbols import load_aliases
    from finassist.training.dataset import generate_dataset, open_teacher, teacher_label
    from finassist.training.questions import load_questions
    from finassist.training.tracking import log_dataset

    settings = load_settings()
    try:
        questions = load_questions(questions_file)
        store = open_store(settings)
        if store.count() == 0:
            fail("the feature store is empty: ingest news first (finassist ingest file|backfill|stream)")
        retriever = Retriever(store, get_embedder(settings.embedding_model, settings.embedding_device))
        teacher = open_teacher(settings)
    except (ValueError, FileNotFoundError, StoreError, LLMError) as e:
        fail(str(e))
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
        fail(str(e))
    result = report.as_dict()
    result["mlflow_run_id"] = log_dataset(settings, result, Path(report.path))
    human = (
        f"dataset {report.version} ({'new' if report.new_version else 'unchanged'}): {report.train} train / "
        f"{report.eval} eval examples from {report.questions} questions; teacher {report.teacher}; "
        f"{report.generated} generated, {report.reused} reused; dropped {report.dropped_empty} empty, "
        f"{report.dropped_refusal} refusals, {report.dropped_duplicate} duplicates; {report.failed} failed\n"
        f"  {report.path}"
    )
    emit(result, as_json, human)


@dataset_app.command("list")
def dataset_list(as_json: JsonOpt = False) -> None:
    """Stored dataset versions, newest first."""
    setup_logging()
    from finassist.training.dataset import list_datasets

    rows = list_datasets(load_settings())
    keys = ("version", "created_at", "train", "eval", "teacher", "prompt_version")
    rows = [{k: m.get(k) for k in keys} for m in rows]
    human = "\n".join(
        f"{r['version']}  {str(r['created_at'])[:19]}  {r['train']} train / {r['eval']} eval  "
        f"teacher {r['teacher']}  prompt {r['prompt_version']}"
        for r in rows
    ) or "no datasets yet: finassist dataset generate"
    emit(rows, as_json, human)


@dataset_app.command("show")
def dataset_show(
    version: Annotated[str | None, typer.Argument(help="Version (or a unique prefix); default the newest.")] = None,
    examples: Annotated[int, typer.Option(min=0, help="Examples to print.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """A dataset version's manifest and a few examples."""
    setup_logging()
    from finassist.training.dataset import load_dataset

    try:
        manifest, train, _ = load_dataset(load_settings(), version)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    sample = [e.model_dump(mode="json", exclude={"context"}) | {"context": [h.article_id for h in e.context]}
              for e in train[:examples]]
    result = {**manifest, "examples": sample}
    emit(result, as_json, json.dumps(result, indent=2, default=str))



@app.command("train")
def train_command(
    config_file: Annotated[Path | None, typer.Option("--config", help="YAML of training settings.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override one setting: --set max_steps=20 (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the base model with LoRA (QLoRA on CUDA) on a dataset version; tracked in MLflow."""
    setup_logging()
    from pydantic import ValidationError

    from finassist.training.finetune import load_config, train

    settings = load_settings()
    try:
        config = load_config(config_file, overrides or [])
    except (ValueError, ValidationError, OSError) as e:
        fail(f"invalid training config: {e}")
    try:
        result = train(settings, config)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    m = result["metrics"]
    human = (
        f"run {result['run_id']}: {m['train_steps']} steps in {m['train_seconds']:.0f} s, train loss "
        f"{m['train_loss']:.3f}" + (f", eval loss {m['eval_loss']:.3f}" if "eval_loss" in m else "")
        + f"\n  adapter: {result['adapter_dir']}"
    )
    emit(result, as_json, human)



@app.command("evaluate")
def evaluate_command(
    adapter: Annotated[Path | None, typer.Option(help="Adapter folder from `train`; omit: base only.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset version; default the adapter's.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N held-out examples.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=1024, help="Answer length when generating.")] = 96,
    as_json: JsonOpt = False,
) -> None:
    """Base vs fine-tuned on the held-out questions: perplexity, ROUGE-L, groundedness, LLM judge (with a teacher)."""
    setup_logging()
    from finassist.llm import LLMError
    from finassist.training.dataset import open_teacher
    from finassist.training.evaluate import evaluate

    settings = load_settings()
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        fail(f"{adapter} is not an adapter folder (no adapter_config.json)")
    try:
        judge = open_teacher(settings) if (settings.teacher_model or settings.teacher_base_url) else None
        report = evaluate(settings, adapter, dataset, limit, max_tokens, judge)
    except (ValueError, FileNotFoundError, LLMError) as e:
        fail(str(e))
    lines = [f"dataset {report['dataset_version']}"]
    for model in ("base", "tuned"):
        if model in report:
            r = report[model]
            judged = f", judge {r['judge']:.2f}" if "judge" in r else ""
            lines.append(f"{model:>5}: perplexity {r['perplexity']:.2f}, ROUGE-L {r['rouge_l']:.3f}, "
                         f"grounded {r['groundedness']:.0%}{judged} ({r['examples']} examples)")
    emit(report, as_json, "\n".join(lines))
