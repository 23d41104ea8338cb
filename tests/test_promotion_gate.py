"""The promotion gate: perplexity must improve *and* answer quality (ROUGE-L, groundedness) must not regress beyond
a stated tolerance; the decision line shows every metric as champion → candidate. Training runs are stood in for by
MLflow runs carrying the evaluation reports `evaluate` would have logged, so no model is loaded."""

from __future__ import annotations

import json

from finassist.config import Settings
from finassist.training.promotion import TOLERANCE, gate, promote, register

KEY = "feedc0ffee00-n5-t96"


def scored_run(settings: Settings, perplexity: float, rouge_l: float, groundedness: float) -> str:
    """A finished training run evaluated on KEY with these held-out scores (as `evaluate` logs them)."""
    from finassist.training.tracking import TRAINING_EXPERIMENT, experiment_id, mlflow_client

    mlflow, client = mlflow_client(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings, TRAINING_EXPERIMENT)) as run:
        mlflow.set_tags({"dataset_version": "feedc0ffee00", "base_model": "SmolLM2-135M-Instruct",
                         "prompt_version": "v1", "heldout_key": KEY,
                         "teacher": "local:Qwen2.5-Coder-1.5B-Instruct", "self_taught": "false"})
    tuned = {"perplexity": perplexity, "rouge_l": rouge_l, "groundedness": groundedness, "examples": 5}
    client.log_text(run.info.run_id, json.dumps({"key": KEY, "tuned": tuned}), f"evaluations/{KEY}.json")
    return run.info.run_id


def test_better_perplexity_with_worse_rouge_l_is_not_promoted_and_says_why():
    champion = {"perplexity": 4.10, "rouge_l": 0.737, "groundedness": 0.80}
    candidate = {"perplexity": 3.20, "rouge_l": 0.461, "groundedness": 0.80}  # today's incident (issue 12)
    promoted, why, changes = gate("perplexity", candidate, champion)
    assert not promoted
    assert why == "better perplexity, but ROUGE-L is worse by 0.276 (more than the 0.02 allowed)"
    assert [str(c) for c in changes] == ["perplexity 4.1 → 3.2 (better)", "ROUGE-L 0.737 → 0.461 (worse)",
                                         "groundedness 0.800 → 0.800 (same)", "judge n/a → n/a (not compared)"]


def test_small_quality_losses_within_the_tolerance_do_not_block_a_better_perplexity():
    champion = {"perplexity": 4.0, "rouge_l": 0.50, "groundedness": 0.80, "judge": 4.0}
    within = {"perplexity": 3.9, "rouge_l": 0.50 - TOLERANCE["rouge_l"], "groundedness": 0.80, "judge": 3.95}
    promoted, why, changes = gate("perplexity", within, champion)
    assert promoted and why == "better perplexity, no metric worse beyond its tolerance"
    assert [c.verdict for c in changes] == ["better", "within tolerance", "same", "within tolerance"]
    # Groundedness moves in steps of 1/n: one of five answers turning ungrounded is a regression.
    promoted, why, _ = gate("perplexity", {**within, "groundedness": 0.60}, champion)
    assert not promoted and "groundedness is worse by 0.2" in why
    # Another primary metric: perplexity becomes a guard (2 % relative), and is left out across base models.
    assert not gate("rouge_l", {**champion, "rouge_l": 0.6, "perplexity": 4.5}, champion)[0]
    assert gate("rouge_l", {**champion, "rouge_l": 0.6, "perplexity": 4.5}, champion, perplexity_comparable=False)[0]


def test_the_gate_promotes_only_versions_better_on_all_and_the_decision_line_lists_each_metric(settings):
    from typer.testing import CliRunner

    from finassist.cli import app
    from finassist.cli.training import _decision_line
    from finassist.registry import CHAMPION, ModelRegistry

    settings = settings.model_copy(update={"tracing": False})
    registry = ModelRegistry(settings)
    runs = [scored_run(settings, 4.10, 0.737, 0.80),  # v1: the champion
            scored_run(settings, 3.20, 0.461, 0.80),  # v2: better perplexity, much worse ROUGE-L
            scored_run(settings, 3.90, 0.750, 1.00)]  # v3: better on all
    versions = [register(settings, run)[0] for run in runs]
    assert versions[2].tags["teacher"] == "local:Qwen2.5-Coder-1.5B-Instruct"  # the teacher travels with it
    first = promote(settings, versions[0].version)
    assert first.promoted and first.reason == "first champion (perplexity 4.1, ROUGE-L 0.737, groundedness 0.8)"

    worse = promote(settings, versions[1].version)
    assert not worse.promoted and registry.by_alias(settings.registry_model, CHAMPION).version == 1
    line = _decision_line(worse)
    assert line.startswith("version 2 not promoted: does not beat the champion financial-assistant/1 on held-out "
                           f"set {KEY}: better perplexity, but ROUGE-L is worse by 0.276")
    for shown in ("perplexity 4.1 → 3.2 (better)", "ROUGE-L 0.737 → 0.461 (worse)",
                  "groundedness 0.800 → 0.800 (same)"):
        assert shown in line
    assert worse.as_dict()["changes"][1] == {"metric": "rouge_l", "champion": 0.737, "candidate": 0.461,
                                             "verdict": "worse"}

    # The CLI prints the same line; the better-on-all version is promoted.
    result = CliRunner().invoke(app, ["model", "promote", str(versions[2].version)],
                                env={"FINASSIST_HOME": str(settings.home), "FINASSIST_TRACING": "false"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("version 3 promoted to champion: beats the champion financial-assistant/1")
    for shown in ("perplexity 4.1 → 3.9 (better)", "ROUGE-L 0.737 → 0.750 (better)",
                  "groundedness 0.800 → 1.000 (better)"):
        assert shown in result.stdout
    assert registry.by_alias(settings.registry_model, CHAMPION).version == 3
    assert "ROUGE-L 0.737 → 0.750" in registry.get(settings.registry_model, 3).tags["promotion_reason"]

