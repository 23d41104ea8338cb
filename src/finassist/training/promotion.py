"""Registering trained adapters and promoting one to `champion`, the version serving loads.

A new version replaces the champion only when, **on the same held-out set**, it scores better on
`FINASSIST_PROMOTION_METRIC` (held-out perplexity by default) *and* is no worse than the champion on any other
metric both were scored on (ROUGE-L, groundedness, judge; perplexity when the base models match) by more than that
metric's `TOLERANCE`. When the champion was evaluated on another dataset version, it is evaluated on the
candidate's held-out questions first (and that report is kept on its run). The decision's reason lists every
metric as champion → candidate. `force` skips the comparison.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from finassist.config import Settings
from finassist.llm import LLM, read_adapter_meta
from finassist.registry import CHAMPION, ModelRegistry, ModelVersion, RegistryError
from finassist.training.evaluate import evaluate, stored_evaluation

log = logging.getLogger(__name__)

LOWER_IS_BETTER = frozenset({"perplexity"})
GATED = ("perplexity", "rouge_l", "groundedness", "judge")
LABELS = {"perplexity": "perplexity", "rouge_l": "ROUGE-L", "groundedness": "groundedness", "judge": "judge"}
# How much worse than the champion a metric may be and still count as "not worse". Greedy evaluation is
# deterministic, so these are not for noise in re-scoring one adapter but for differences too small to mean a worse
# model (the regression that motivated the gate was ROUGE-L 0.737 → 0.461, i.e. 0.276):
# - ROUGE-L (0–1): 0.02 is one answer in ten losing a fifth of its overlap with the teacher's answer.
# - groundedness (share of grounded answers, steps of 1/n): 0.02 lets no answer turn ungrounded on sets < 50.
# - judge (1–5): 0.1 is one grade on one answer in ten.
# - perplexity, when it is not the primary metric: 2 % relative (a ratio scale: a fixed margin would mean
#   different things at 1.5 and at 15).
TOLERANCE = {"rouge_l": 0.02, "groundedness": 0.02, "judge": 0.1}
PERPLEXITY_TOLERANCE = 0.02  # relative


class PromotionError(ValueError):
    """Promotion cannot be decided (nothing evaluated, metric missing, incomparable models)."""


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    version: int
    metric: str
    candidate: float | None = None
    champion: float | None = None
    previous_champion: int | None = None
    changes: tuple[Change, ...] = ()  # every metric, champion → candidate

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "changes": [c.as_dict() for c in self.changes]}


@dataclass(frozen=True)
class Change:
    """One metric of the candidate against the champion's on the same held-out set."""

    metric: str
    champion: float | None
    candidate: float | None
    verdict: str  # better | same | within tolerance | worse | not compared

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4g}" if self.metric == "perplexity" else f"{value:.3f}"

        return f"{LABELS.get(self.metric, self.metric)} {show(self.champion)} → {show(self.candidate)} ({self.verdict})"


def compare(metric: str, candidate: float, champion: float) -> str:
    """The verdict on one metric: better, same, within tolerance (worse by no more than its margin) or worse."""
    if candidate == champion:
        return "same"
    if beats(metric, candidate, champion):
        return "better"
    allowed = abs(champion) * PERPLEXITY_TOLERANCE if metric in LOWER_IS_BETTER else TOLERANCE.get(metric, 0.0)
    return "within tolerance" if abs(candidate - champion) <= allowed + 1e-12 else "worse"


def gate(primary: str, candidate: dict[str, Any], champion: dict[str, Any],
         perplexity_comparable: bool = True) -> tuple[bool, str, tuple[Change, ...]]:
    """Promote when the primary metric is strictly better and no other metric both were scored on is worse than
    the champion's by more than its tolerance: (promote, why, every metric's change)."""
    changes = []
    for metric in dict.fromkeys((primary, *GATED)):
        mine, theirs = candidate.get(metric), champion.get(metric)
        if mine is None or theirs is None or (metric == "perplexity" and not perplexity_comparable):
            changes.append(Change(metric, theirs, mine, "not compared"))
        else:
            changes.append(Change(metric, float(theirs), float(mine), compare(metric, float(mine), float(theirs))))
    head, guards = changes[0], changes[1:]
    worse = [c for c in guards if c.verdict == "worse"]
    label = LABELS.get(primary, primary)
    if head.verdict != "better":
        why = f"{label} is not better"
    elif worse:
        why = f"better {label}, but " + ", ".join(
            f"{LABELS[c.metric]} is worse by {abs(c.candidate - c.champion):.3g} (more than the "  # type: ignore[operator]
            f"{_allowed(c)} allowed)" for c in worse)
    else:
        why = f"better {label}, no metric worse beyond its tolerance"
    return head.verdict == "better" and not worse, why, tuple(changes)


def _allowed(change: Change) -> str:
    if change.metric in LOWER_IS_BETTER:
        return f"{PERPLEXITY_TOLERANCE:.0%}"
    return f"{TOLERANCE.get(change.metric, 0.0):g}"


def beats(metric: str, candidate: float, champion: float) -> bool:
    """Strictly better: a tie keeps the champion (no churn without evidence)."""
    return candidate < champion if metric in LOWER_IS_BETTER else candidate > champion


def register(settings: Settings, run_id: str) -> tuple[ModelVersion, bool]:
    """The run's adapter as a version of the registered model, tagged with what serving and people need to know."""
    from finassist.training.tracking import mlflow_client

    _, client = mlflow_client(settings)
    run = client.get_run(run_id)
    data = run.data
    if "dataset_version" not in data.tags:
        raise PromotionError(f"run {run_id} is not a finassist training run (no dataset_version tag)")
    tags: dict[str, Any] = {k: data.tags[k] for k in ("base_model", "prompt_version", "dataset_version", "teacher",
                                                      "self_taught") if k in data.tags}
    tags |= {k: f"{v:.6g}" for k, v in data.metrics.items()
             if k in ("train_loss", "eval_loss") or k.startswith("heldout_")}
    if "heldout_key" in data.tags:
        tags["heldout_key"] = data.tags["heldout_key"]
    return ModelRegistry(settings).register(settings.registry_model, run_id, "adapter", tags)


def _scores(settings: Settings, version: ModelVersion, key: str, judge: LLM | None) -> dict[str, Any]:
    """The version's held-out scores under `key`: stored by `evaluate`, or computed now on that held-out set."""
    if version.run_id:
        stored = stored_evaluation(settings, version.run_id, key)
        if stored and "tuned" in stored:
            return stored["tuned"]
    dataset, examples, tokens = _parse_key(key)
    log.info("evaluating %s on held-out set %s to compare it with the candidate", version.label, key)
    folder = ModelRegistry(settings).download(version)
    meta = read_adapter_meta(folder)
    if meta.get("run_id") != version.run_id:  # a copied adapter: its report should not land on another run
        raise PromotionError(f"{version.label}: adapter metadata names run {meta.get('run_id')}, "
                             f"the registry {version.run_id}")
    report = evaluate(settings, folder, dataset, examples, tokens, judge, include_base=False)
    return report["tuned"]


def _parse_key(key: str) -> tuple[str, int, int]:
    dataset, n, t = key.rsplit("-", 2)
    return dataset, int(n.removeprefix("n")), int(t.removeprefix("t"))


def promote(settings: Settings, version: int, force: bool = False, judge: LLM | None = None) -> Decision:
    """Move `champion` to `version` if it beats the current champion (or `force`)."""
    registry = ModelRegistry(settings)
    name, metric = settings.registry_model, settings.promotion_metric
    candidate = registry.get(name, version)
    champion = registry.by_alias(name, CHAMPION)
    if champion is not None and champion.version == candidate.version:
        return Decision(False, f"{candidate.label} already is the champion", version, metric,
                        previous_champion=champion.version)
    decision = _decide(settings, candidate, champion, metric, judge, force)
    if decision.promoted:
        registry.set_alias(name, CHAMPION, version)
        registry.set_tags(name, version, {"promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                          "promotion_reason": decision.reason})
        log.info("%s is the champion: %s", candidate.label, decision.reason)
    return decision


def _decide(settings: Settings, candidate: ModelVersion, champion: ModelVersion | None, metric: str,
            judge: LLM | None, force: bool) -> Decision:
    previous = champion.version if champion else None
    key = None
    if candidate.run_id:  # the run's latest evaluation on its own dataset (it may postdate the registration)
        from finassist.training.tracking import mlflow_client

        key = mlflow_client(settings)[1].get_run(candidate.run_id).data.tags.get("heldout_key")
    if force:
        return Decision(True, "forced", candidate.version, metric, previous_champion=previous)
    if key is None:
        raise PromotionError(
            f"{candidate.label} has not been evaluated: finassist evaluate --adapter "
            f"models:/{candidate.name}/{candidate.version} (or promote with --force)"
        )
    mine = _scores(settings, candidate, key, judge)
    if mine.get(metric) is None:
        raise PromotionError(f"{candidate.label} has no {metric} score (judge scores need a teacher endpoint)")
    if champion is None:
        scored = ", ".join(f"{LABELS[m]} {mine[m]:.4g}" for m in dict.fromkeys((metric, *GATED)) if m in mine)
        return Decision(True, f"first champion ({scored})", candidate.version, metric, mine[metric])
    same_base = champion.tags.get("base_model") == candidate.tags.get("base_model")
    if metric == "perplexity" and not same_base:
        raise PromotionError(
            f"{candidate.label} and the champion {champion.label} have different base models "
            f"({candidate.tags.get('base_model')} vs {champion.tags.get('base_model')}): their perplexities are not "
            "comparable; set FINASSIST_PROMOTION_METRIC to another metric or promote with --force"
        )
    theirs = _scores(settings, champion, key, judge)
    if theirs.get(metric) is None:
        raise PromotionError(f"the champion {champion.label} has no {metric} score on {key}")
    promoted, why, changes = gate(metric, mine, theirs, perplexity_comparable=same_base)
    verdict = "beats" if promoted else "does not beat"
    reason = (f"{verdict} the champion {champion.label} on held-out set {key}: {why}; "
              + ", ".join(str(c) for c in changes))
    return Decision(promoted, reason, candidate.version, metric, mine[metric], theirs[metric], previous, changes)


__all__ = ["Change", "Decision", "PromotionError", "RegistryError", "beats", "gate", "promote", "register"]
