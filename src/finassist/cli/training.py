"""Training commands: dataset generate|list|show, train, evaluate, model register|promote|list."""

from __future__ import annotations

import json
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
    model_app,
    setup_logging,
)


@dataset_app.command("generate")
def dataset_generate(
    questions_file: Annotated[
        Path | None, typer.Option("--questions", help="YAML of personas and questions; default the packaged set.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    k: Annotated[int | None, typer.Option(min=1, max=20, help="News per prompt (FINASSIST_RETRIEVAL_K).")] = None,
    from_news: Annotated[int, typer.Option(
        min=0, max=1000, help="Also ask up to N questions about the newest articles (their company and event)."
    )] = 0,
    max_teacher_calls: Annotated[int | None, typer.Option(
        min=0, help="Ask the teacher at most this many new questions (cached answers are free); the rest wait."
    )] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the teacher LLM each question with news context from the feature store; store a new dataset version."""
    setup_logging()
    from finassist.embed import get_embedder
    from finassist.llm import LLMError
    from finassist.retrieval import Retriever
    from finassist.store import StoreError, open_store, search_mode
    from finassist.symbols import load_aliases
    from finassist.training.dataset import generate_dataset
    from finassist.training.news_questions import with_news_questions
    from finassist.training.questions import load_questions
    from finassist.training.teacher import choose_teacher, open_teacher, teacher_label
    from finassist.training.tracking import log_dataset

    settings = load_settings()
    if k is not None:
        settings = settings.model_copy(update={"retrieval_k": k})
    try:
        questions = load_questions(questions_file)
        store = open_store(settings)
        if store.count() == 0:
            fail("the feature store is empty: ingest news first (finassist ingest file|backfill|stream)")
        retriever = Retriever(
            store, get_embedder(settings.embedding_model, settings.embedding_device), search_mode(settings)
        )
        aliases = load_aliases(settings.symbol_aliases)
        if from_news:  # a few more articles than questions: some name no company or repeat a question
            questions = with_news_questions(questions, store.latest(from_news * 3), aliases, from_news, limit)
            limit = None
        teacher = open_teacher(settings, choose_teacher(settings))
    except (ValueError, FileNotFoundError, StoreError, LLMError) as e:
        fail(str(e))
    try:
        report = generate_dataset(
            settings, questions, retriever, teacher, teacher_label(settings, teacher), aliases, limit=limit,
            max_calls=max_teacher_calls,
        )
    except LLMError as e:
        fail(str(e))
    result = report.as_dict()
    result["mlflow_run_id"] = log_dataset(settings, result, Path(report.path))
    human = (
        f"dataset {report.version} ({'new' if report.new_version else 'unchanged'}): {report.train} train / "
        f"{report.eval} eval examples from {report.questions} questions; teacher {report.teacher}, student "
        f"{report.student}; {report.generated} generated, {report.reused} reused; dropped {report.dropped_empty} "
        f"empty, {report.dropped_refusal} refusals, {report.dropped_stub} stubs, {report.dropped_looping} looping, "
        f"{report.dropped_duplicate} duplicates; {report.failed} failed"
        + (f"; {report.deferred} over the teacher budget, for a later run" if report.deferred else "") + "\n"
        f"  {report.path}" + "".join(f"\n  warning: {w}" for w in report.warnings)
    )
    emit(result, as_json, human)


@dataset_app.command("list")
def dataset_list(as_json: JsonOpt = False) -> None:
    """Stored dataset versions, newest first."""
    setup_logging()
    from finassist.training.dataset import list_datasets

    rows = list_datasets(load_settings())
    keys = ("version", "created_at", "train", "eval", "teacher", "student", "prompt_version")
    rows = [{k: m.get(k) for k in keys} for m in rows]
    human = "\n".join(
        f"{r['version']}  {str(r['created_at'])[:19]}  {r['train']} train / {r['eval']} eval  "
        f"teacher {r['teacher']}  student {r['student'] or '?'}  prompt {r['prompt_version']}"
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
    reuse: Annotated[
        bool, typer.Option("--reuse", help="If this config already finished on this dataset, reuse that run.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the base model with LoRA (QLoRA on CUDA) on a dataset version; tracked in MLflow."""
    setup_logging()
    from pydantic import ValidationError

    from finassist.training.finetune import finished_run, load_config, train

    settings = load_settings()
    try:
        config = load_config(config_file, overrides or [])
    except (ValueError, ValidationError, OSError) as e:
        fail(f"invalid training config: {e}")
    try:
        result = (finished_run(settings, config) if reuse else None) or train(settings, config)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    if "run_id" not in result:  # another process of a distributed run: the main one tracks and reports
        emit(result, as_json, f"process {result['rank']}: done")
        return
    m = result["metrics"]
    human = (
        ("reused " if result.get("reused") else "")
        + f"run {result['run_id']}: {m['train_steps']} steps in {m['train_seconds']:.0f} s, train loss "
        f"{m['train_loss']:.3f}" + (f", eval loss {m['eval_loss']:.3f}" if "eval_loss" in m else "")
        + f"\n  adapter: {result['adapter_dir']}"
    )
    emit(result, as_json, human)



@app.command("evaluate")
def evaluate_command(
    adapter: Annotated[
        str | None,
        typer.Option(help="Adapter folder or models:/NAME/VERSION (or @ALIAS); default the latest training run's."),
    ] = None,
    base_only: Annotated[bool, typer.Option("--base-only", help="Score the base model alone.")] = False,
    dataset: Annotated[str | None, typer.Option(help="Dataset version; default the adapter's.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N held-out examples.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, max=1024, help="Answer length when generating.")] = 96,
    reuse: Annotated[
        bool, typer.Option("--reuse", help="Print the adapter's stored report for this held-out set if there is one.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Base vs fine-tuned on the held-out questions: perplexity, ROUGE-L, groundedness, LLM judge (with a teacher)."""
    setup_logging()
    from finassist.llm import LLMError
    from finassist.registry import RegistryError, resolve_adapter
    from finassist.training.evaluate import evaluate
    from finassist.training.tracking import adapter_for_run, latest_training_run

    settings = load_settings()
    try:
        if base_only:
            folder = None
        elif adapter is None:
            folder = adapter_for_run(settings, latest_training_run(settings))
        else:
            folder, _ = resolve_adapter(settings, adapter)
            if folder is None:
                fail(f"{adapter}: no such model version in the registry")
        if folder is not None and not (folder / "adapter_config.json").is_file():
            fail(f"{folder} is not an adapter folder (no adapter_config.json)")
        report = (_stored_report(settings, folder, dataset, limit, max_tokens) if reuse and folder else None) \
            or evaluate(settings, folder, dataset, limit, max_tokens, _judge(settings))
    except (ValueError, FileNotFoundError, LLMError, RegistryError) as e:
        fail(str(e))
    lines = [f"dataset {report['dataset_version']} ({report['examples']} held-out examples)"]
    for model in ("base", "tuned"):
        if model in report:
            r = report[model]
            judged = f", judge {r['judge']:.2f}" if "judge" in r else ""
            lines.append(f"{model:>5}: perplexity {r['perplexity']:.2f}, ROUGE-L {r['rouge_l']:.3f}, "
                         f"grounded {r['groundedness']:.0%}{judged}")
    emit(report, as_json, "\n".join(lines))


def _stored_report(settings, folder: Path, dataset: str | None, limit: int | None, max_tokens: int) -> dict | None:
    from finassist.llm import read_adapter_meta
    from finassist.training.dataset import load_dataset
    from finassist.training.evaluate import evaluation_key, stored_evaluation

    meta = read_adapter_meta(folder)
    if not meta.get("run_id"):
        return None
    manifest, _, held = load_dataset(settings, dataset or meta.get("dataset_version"))
    n = min(limit, len(held)) if limit else len(held)
    report = stored_evaluation(settings, meta["run_id"], evaluation_key(manifest["version"], n, max_tokens))
    return report | {"reused": True} if report and "base" in report and "tuned" in report else None


def _decision_line(decision) -> str:
    verb = "promoted to champion" if decision.promoted else "not promoted"
    return f"version {decision.version} {verb}: {decision.reason}"


@model_app.command("register")
def model_register(
    run_id: Annotated[str | None, typer.Option("--run", help="Training run id; default the latest.")] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="An adapter folder from `train` (its finassist.json names the run).")
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Then make it the champion if it beats the current one.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --promote: skip the comparison.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a trained adapter as a new version of the registered model (FINASSIST_REGISTRY_MODEL)."""
    setup_logging()
    from mlflow.exceptions import MlflowException

    from finassist.llm import LLMError, read_adapter_meta
    from finassist.training.promotion import RegistryError, register
    from finassist.training.promotion import promote as promote_version
    from finassist.training.tracking import latest_training_run

    if run_id and adapter:
        fail("give --run or --adapter, not both")
    settings = load_settings()
    try:
        if adapter is not None:
            run_id = read_adapter_meta(adapter).get("run_id")
            if not run_id:
                fail(f"{adapter} has no {'finassist.json'} naming its training run")
        run_id = run_id or latest_training_run(settings)
        version, created = register(settings, run_id)
        result: dict = {"registered": version.as_dict(), "created": created}
        lines = [f"{version.label} {'registered' if created else 'was already registered'} (run {run_id})"]
        if promote:
            decision = promote_version(settings, version.version, force, _judge(settings))
            result["promotion"] = decision.as_dict()
            lines.append(_decision_line(decision))
    except (ValueError, LLMError, RegistryError, MlflowException) as e:
        fail(str(e))
    emit(result, as_json, "\n".join(lines))


@model_app.command("promote")
def model_promote(
    version: Annotated[int, typer.Argument(min=1, help="Registered version to make the champion.")],
    force: Annotated[bool, typer.Option("--force", help="Skip the comparison with the current champion.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a version the champion (what serving loads) if it beats the current one on held-out data."""
    setup_logging()
    from mlflow.exceptions import MlflowException

    from finassist.llm import LLMError
    from finassist.training.promotion import RegistryError, promote

    settings = load_settings()
    try:
        decision = promote(settings, version, force, _judge(settings))
    except (ValueError, LLMError, RegistryError, MlflowException) as e:
        fail(str(e))
    emit(decision.as_dict(), as_json, _decision_line(decision))


@model_app.command("list")
def model_list(as_json: JsonOpt = False) -> None:
    """Registered versions, newest first, with aliases, dataset and held-out scores."""
    setup_logging()
    from finassist.registry import ModelRegistry, registry_exists

    settings = load_settings()
    versions = ModelRegistry(settings).versions(settings.registry_model) if registry_exists(settings) else []
    rows = [v.as_dict() for v in versions]
    metric = f"heldout_tuned_{settings.promotion_metric}"
    human = "\n".join(
        f"{v.label:<24} {','.join(v.aliases) or '-':<10} {v.created_at:%Y-%m-%d %H:%M}  "
        f"dataset {v.tags.get('dataset_version', '?')}  {metric} {v.tags.get(metric, 'not evaluated')}"
        for v in versions
    ) or f"no versions of {settings.registry_model} yet: finassist train, evaluate, model register"
    emit(rows, as_json, human)


def _judge(settings):
    from finassist.training.teacher import open_judge

    return open_judge(settings)
