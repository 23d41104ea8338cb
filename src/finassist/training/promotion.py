"""Registering trained adapters and promoting one to `champion`, the version serving loads.

A new version replaces the champion only when it scores better on `FINASSIST_PROMOTION_METRIC` (held-out
perplexity by default) **on the same held-out set**: when the champion was evaluated on another dataset version,
it is evaluated on the candidate's held-out questions first (and that report is kept on its run).
`force` skips the comparison.
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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
    tags: dict[str, Any] = {k: data.tags[k] for k in ("base_model", "prompt_version", "dataset_version")
                            if k in data.tags}
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
    mine = _scores(settings, candidate, key, judge).get(metric)
    if mine is None:
        raise PromotionError(f"{candidate.label} has no {metric} score (judge scores need a teacher endpoint)")
    if champion is None:
        return Decision(True, f"first champion ({metric} {mine:.4g})", candidate.version, metric, mine)
    if metric == "perplexity" and champion.tags.get("base_model") != candidate.tags.get("base_model"):
        raise PromotionError(
            f"{candidate.label} and the champion {champion.label} have different base models "
            f"({candidate.tags.get('base_model')} vs {champion.tags.get('base_model')}): their perplexities are not "
            "comparable; set FINASSIST_PROMOTION_METRIC to another metric or promote with --force"
        )
    theirs = _scores(settings, champion, key, judge).get(metric)
    if theirs is None:
        raise PromotionError(f"the champion {champion.label} has no {metric} score on {key}")
    better = beats(metric, mine, theirs)
    verdict = "beats" if better else "does not beat"
    reason = f"{metric} {mine:.4g} {verdict} the champion {champion.label}'s {theirs:.4g} on held-out set {key}"
    return Decision(better, reason, candidate.version, metric, mine, theirs, previous)


__all__ = ["Decision", "PromotionError", "RegistryError", "beats", "promote", "register"]
