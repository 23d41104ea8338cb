"""The model registry: registering adapters, gated promotion to `champion`, and serving the champion."""

from __future__ import annotations

import logging

import pytest

from finassist.config import Settings
from finassist.registry import ModelRef, RegistryError, resolve_adapter

from conftest import finassist, qa_example, write_dataset

NAME = "financial-assistant"


def test_model_uris_parse_and_bad_ones_are_rejected():
    assert ModelRef.parse("models:/financial-assistant@champion") == ModelRef(NAME, alias="champion")
    assert ModelRef.parse("models:/financial-assistant/12") == ModelRef(NAME, version=12)
    assert str(ModelRef(NAME, version=3)) == "models:/financial-assistant/3"
    for bad in ("models:/", "models:/x/latest", "runs:/abc/adapter", "models:/x@", "models:/a/b/c"):
        with pytest.raises(RegistryError, match="not a model URI"):
            ModelRef.parse(bad)


def test_settings_default_to_the_champion_and_empty_means_the_base_model(tmp_path):
    assert Settings(home=tmp_path, llm_adapter=None).adapter_spec == "models:/financial-assistant@champion"
    assert Settings(home=tmp_path, llm_adapter=None, registry_model="fa2").adapter_spec == "models:/fa2@champion"
    assert Settings(home=tmp_path, llm_adapter="").adapter_spec == ""
    assert resolve_adapter(Settings(home=tmp_path), "") == (None, None)
    assert resolve_adapter(Settings(home=tmp_path), str(tmp_path / "a")) == (tmp_path / "a", None)


def test_without_a_champion_serving_falls_back_to_the_base_model_with_a_log_line(tmp_path, caplog):
    settings = Settings(home=tmp_path / "fresh", llm_adapter=None)
    with caplog.at_level(logging.WARNING, logger="finassist.registry"):
        assert resolve_adapter(settings, settings.adapter_spec) == (None, None)
    assert "no model version is models:/financial-assistant@champion in the registry yet: serving the base model" \
        in caplog.text
    assert not (tmp_path / "fresh" / "mlflow.db").exists()  # looking did not create a tracking database


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real training runs on one dataset: `good` learned (3 steps), `inert` did not (learning rate 1e-12, so its
    adapter is the base model's twin); neither is evaluated yet."""
    from finassist.training.finetune import TrainConfig, train

    settings = Settings(home=tmp_path_factory.mktemp("registry") / "home", tracing=False, llm_adapter=None)
    folder = write_dataset(settings, "feedc0ffee00",
                           [qa_example(i, f"Copperdeep raised its dividend by {i}% [1].") for i in range(1, 11)])
    assert len((folder / "eval.jsonl").read_text().splitlines()) >= 2  # so that a first-1 subset is another set
    small = {"batch_size": 2, "lora_r": 4, "lora_alpha": 8}
    good = train(settings, TrainConfig(max_steps=3, **small))
    inert = train(settings, TrainConfig(max_steps=1, learning_rate=1e-12, **small))
    return settings, good, inert


@pytest.mark.slow
def test_promotion_is_gated_on_held_out_scores_and_serving_loads_the_champion(runs, caplog):
    from finassist.llm import open_llm
    from finassist.registry import CHAMPION, ModelRegistry
    from finassist.training.evaluate import evaluate
    from finassist.training.promotion import PromotionError, promote, register

    settings, good, inert = runs
    registry = ModelRegistry(settings)

    v_inert, created = register(settings, inert["run_id"])
    assert created and v_inert.version == 1
    assert register(settings, inert["run_id"]) == (v_inert, False)  # registering a run twice: same version
    assert v_inert.tags["dataset_version"] == "feedc0ffee00" and v_inert.tags["prompt_version"] == "v1"
    assert v_inert.tags["base_model"] == "SmolLM2-135M-Instruct" and "train_loss" in v_inert.tags
    with pytest.raises(PromotionError, match="has not been evaluated: finassist evaluate"):
        promote(settings, 1)
    assert registry.by_alias(NAME, CHAMPION) is None

    evaluate(settings, settings.home / "runs" / inert["run_id"] / "adapter", max_new_tokens=4, include_base=False)
    first = promote(settings, 1)
    assert first.promoted and first.reason.startswith("first champion (perplexity")
    assert registry.by_alias(NAME, CHAMPION).version == 1
    assert not promote(settings, 1).promoted  # already the champion

    # The trained adapter is better on the same held-out set: it takes over.
    evaluate(settings, settings.home / "runs" / good["run_id"] / "adapter", max_new_tokens=4, include_base=False)
    v_good, _ = register(settings, good["run_id"])
    assert "heldout_tuned_perplexity" in v_good.tags  # evaluated before registration: scores are on the version
    second = promote(settings, v_good.version)
    assert second.promoted and second.candidate < second.champion and second.previous_champion == 1
    assert "beats the champion financial-assistant/1" in second.reason
    assert registry.by_alias(NAME, CHAMPION).version == v_good.version

    # The inert one does not beat it back; --force does.
    third = promote(settings, 1)
    assert not third.promoted and "does not beat the champion" in third.reason
    assert registry.by_alias(NAME, CHAMPION).version == v_good.version
    assert promote(settings, 1, force=True).promoted and registry.by_alias(NAME, CHAMPION).version == 1
    assert promote(settings, v_good.version).promoted  # and back, on the scores

    # Serving resolves @champion, downloads the adapter once and labels the model with the version.
    with caplog.at_level(logging.INFO, logger="finassist.registry"):
        llm = open_llm(settings)
    try:
        assert llm.info.adapter == f"{NAME}/{v_good.version}" and llm.info.prompt_version == "v1"
        assert (settings.home / "registry" / NAME / str(v_good.version) / "adapter_config.json").is_file()
        assert f"serving models:/{NAME}@champion ({NAME}/{v_good.version})" in caplog.text
    finally:
        llm.close()
    with pytest.raises(RegistryError, match="no version 9 of model"):
        resolve_adapter(settings, f"models:/{NAME}/9")


@pytest.mark.slow
def test_a_champion_scored_on_another_held_out_set_is_re_evaluated_on_the_candidates(runs):
    """Scores are only compared on one held-out set: the champion is evaluated on the candidate's first."""
    from finassist.registry import CHAMPION, ModelRegistry
    from finassist.training.evaluate import evaluate, evaluation_key, stored_evaluation
    from finassist.training.promotion import promote, register

    settings, good, inert = runs
    registry = ModelRegistry(settings)
    champion = registry.by_alias(NAME, CHAMPION)
    candidate_run = inert if champion.run_id == good["run_id"] else good
    report = evaluate(settings, settings.home / "runs" / candidate_run["run_id"] / "adapter", limit=1,
                      max_new_tokens=4, include_base=False)
    key = evaluation_key("feedc0ffee00", 1, 4)
    assert report["key"] == key and stored_evaluation(settings, champion.run_id, key) is None
    version, _ = register(settings, candidate_run["run_id"])
    decision = promote(settings, version.version)
    assert f"on held-out set {key}" in decision.reason
    stored = stored_evaluation(settings, champion.run_id, key)
    assert stored is not None and stored["examples"] == 1 and stored["tuned"]["perplexity"] == decision.champion


@pytest.mark.slow
def test_model_cli_lists_registers_and_promotes(runs):
    settings, good, _ = runs
    env = {"FINASSIST_HOME": str(settings.home)}
    rows = finassist("model", "list", "--json", env=env)
    assert [r["version"] for r in rows] == sorted((r["version"] for r in rows), reverse=True)
    assert [r["aliases"] for r in rows].count(["champion"]) == 1 and len(rows) == 2
    result = finassist("model", "register", "--run", good["run_id"], "--promote", "--json", env=env)
    assert result["created"] is False and result["promotion"]["version"] == result["registered"]["version"]
    proc = finassist("model", "promote", "99", env=env, check=False)
    assert proc.returncode == 2 and "no version 99 of model 'financial-assistant'" in proc.stderr
    proc = finassist("model", "register", "--run", "nope", env=env, check=False)
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_api_serves_the_champion(runs):
    """`finassist serve` with default settings answers with the registry's champion, named in /v1/models and /readyz."""
    from fastapi.testclient import TestClient

    from finassist.inference.api import Services, create_app
    from finassist.registry import CHAMPION, ModelRegistry

    settings, _, _ = runs
    champion = ModelRegistry(settings).by_alias(NAME, CHAMPION)
    services = Services(settings)
    services.load()
    try:
        assert services.error is None, services.error
        with TestClient(create_app(settings, services)) as client:
            models = client.get("/v1/models").json()["data"]
            assert [m["id"] for m in models] == [f"SmolLM2-135M-Instruct+{NAME}/{champion.version}"]
            answer = client.post("/v1/ask", json={"question": "What did Copperdeep do?", "max_tokens": 4}).json()
            assert answer["adapter"] == f"{NAME}/{champion.version}"
    finally:
        services.llm.close()
