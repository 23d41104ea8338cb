"""`finassist evaluate`: the base model vs the fine-tuned adapter on a dataset's held-out questions.

Per model: perplexity of the teacher's answers after the serving prompt, and for answers generated greedily with
that prompt: ROUGE-L against the teacher's answers, groundedness in the news context, and (with a teacher endpoint
configured) an LLM-as-judge score from 1 to 5. Logged to the adapter's training run when there is one.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from finassist.config import Settings
from finassist.grounding import context_text
from finassist.llm import LLM, GenerationParams, LLMError
from finassist.llm.base import read_adapter_meta
from finassist.prompt import get_template
from finassist.training.dataset import QAExample, load_dataset
from finassist.training.metrics import answer_nll, groundedness, perplexity, rouge_l
from finassist.training.progress import Progress

log = logging.getLogger(__name__)

JUDGE_PROMPT = """You grade a financial assistant's answer. Score 1 to 5: 5 = correct, complete and supported by the
numbered news; 3 = partly supported or vague; 1 = wrong, unsupported or off-topic.
Reply with the score only.

News and question:
{prompt}

Reference answer: {reference}

Assistant's answer: {answer}"""


def judge_score(judge: LLM, prompt: str, reference: str, answer: str) -> int | None:
    reply = judge.generate(
        [{"role": "user", "content": JUDGE_PROMPT.format(prompt=prompt, reference=reference, answer=answer)}],
        GenerationParams(max_new_tokens=4, temperature=0.0, timeout_s=120),
    ).text
    match = re.search(r"[1-5]", reply)
    return int(match.group()) if match else None


def score_model(llm: LLM, examples: list[QAExample], max_new_tokens: int, judge: LLM | None = None,
                label: str = "evaluate") -> dict[str, Any]:
    """All metrics of one model over `examples` (which carry their own news context and prompt version)."""
    nlls, counts, contexts, references, judged = [], [], [], [], []
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
    prompts = [get_template(e.prompt_version)(e.question, e.context, e.about_me, ()) for e in examples]
    with Progress(f"{label} perplexity", len(examples)) as progress:
        for example, messages in zip(examples, prompts, strict=True):
            nll, n = answer_nll(llm.model, llm.tokenizer, messages, example.answer)  # type: ignore[attr-defined]
            nlls.append(nll)
            counts.append(n)
            contexts.append(context_text(example.context))
            references.append(example.answer)
            progress.advance()
    answers = []
    with Progress(f"{label} answers", len(prompts)) as progress:
        for i in range(0, len(prompts), llm.batch_size):
            answers += [g.text for g in llm.generate_batch(prompts[i : i + llm.batch_size], params)]
            progress.update(len(answers))
    if judge is not None:
        with Progress(f"{label} judge", len(examples)) as progress:
            for example, messages, answer in zip(examples, prompts, answers, strict=True):
                try:
                    judged.append(judge_score(judge, messages[-1]["content"], example.answer, answer))
                except LLMError as exc:
                    log.warning("judge failed on %s: %s", example.id, exc)
                progress.advance()
    scores = [s for s in judged if s is not None]
    result: dict[str, Any] = {
        "perplexity": perplexity(nlls, counts),
        "rouge_l": sum(rouge_l(a, r) for a, r in zip(answers, references, strict=True)) / len(answers),
        "groundedness": groundedness(answers, contexts),
        "examples": len(examples),
    }
    if scores:
        result["judge"] = sum(scores) / len(scores)
    result["samples"] = [{"id": e.id, "answer": a} for e, a in zip(examples[:3], answers[:3], strict=False)]
    return result


def evaluation_key(dataset_version: str, examples: int, max_new_tokens: int) -> str:
    """Names one held-out set and generation length: only scores under the same key are comparable."""
    return f"{dataset_version}-n{examples}-t{max_new_tokens}"


def evaluate(
    settings: Settings,
    adapter: Path | None,
    dataset: str | None = None,
    limit: int | None = None,
    max_new_tokens: int = 96,
    judge: LLM | None = None,
    include_base: bool = True,
) -> dict[str, Any]:
    """Score the base model and/or the adapter on a dataset's held-out questions (default: the adapter's dataset);
    logged to the adapter's training run (metrics `heldout_*` and the report under `evaluations/`)."""
    from finassist.llm.local import TransformersLLM

    meta = read_adapter_meta(adapter) if adapter else {}
    manifest, _, held = load_dataset(settings, dataset or meta.get("dataset_version"))
    held = held[:limit] if limit else held
    if not held:
        raise ValueError(f"dataset {manifest['version']} has no held-out examples")
    key = evaluation_key(manifest["version"], len(held), max_new_tokens)
    report: dict[str, Any] = {"key": key, "dataset_version": manifest["version"], "examples": len(held),
                              "max_new_tokens": max_new_tokens, "adapter": str(adapter) if adapter else None}
    models = ([("base", None)] if include_base or not adapter else []) + ([("tuned", adapter)] if adapter else [])
    for name, folder in models:
        llm = TransformersLLM(model=settings.llm_model, adapter=folder, models_dir=settings.models_path,
                              device=settings.llm_device)
        try:
            report[name] = score_model(llm, held, max_new_tokens, judge, label=f"evaluate {name}")
        finally:
            llm.close()
    run_id = meta.get("run_id")
    if run_id:
        _log(settings, run_id, report, as_latest=meta.get("dataset_version") == manifest["version"])
        report["run_id"] = run_id
    return report


def _log(settings: Settings, run_id: str, report: dict[str, Any], as_latest: bool) -> None:
    """The report as an artifact under its key; on the adapter's own dataset also as the run's `heldout_*`."""
    from finassist.training.tracking import mlflow_client

    mlflow, client = mlflow_client(settings)
    client.log_text(run_id, json.dumps(report, indent=2, default=str), f"evaluations/{report['key']}.json")
    if not as_latest:
        return
    with mlflow.start_run(run_id=run_id):
        for model in ("base", "tuned"):
            for name, value in report.get(model, {}).items():
                if isinstance(value, int | float):
                    mlflow.log_metric(f"heldout_{model}_{name}", float(value))
        mlflow.set_tag("heldout_key", report["key"])


def stored_evaluation(settings: Settings, run_id: str, key: str) -> dict[str, Any] | None:
    """A report `evaluate` logged to the run under `key`, or None."""
    from mlflow.exceptions import MlflowException

    from finassist.training.tracking import mlflow_client

    mlflow, _ = mlflow_client(settings)
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/evaluations/{key}.json")
    except (MlflowException, OSError, ValueError):
        return None
