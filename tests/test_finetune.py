"""Fine-tuning: the loss falls on the answer tokens only, configs, and a short real LoRA run tracked in MLflow."""

from __future__ import annotations

import json

import pytest

from finassist.config import Settings
from finassist.training.finetune import TrainConfig, load_config, make_trainer, train

from conftest import qa_example, write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(llm):
    from transformers import AutoModelForCausalLM

    from finassist.llm.local import packaged_model_dir

    source = packaged_model_dir(Settings().models_path)
    return AutoModelForCausalLM.from_pretrained(source), llm.tokenizer


def test_the_loss_falls_on_the_answer_tokens_only(base, tmp_path):
    model, tokenizer = base
    answer = "Copperdeep raised its dividend by 7% [1]."
    trainer = make_trainer(model, tokenizer, TrainConfig(max_steps=1), [qa_example(7, answer)], [], tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    learned = tokenizer.decode(ids[labels != -100])
    assert learned.startswith(answer) and learned.removeprefix(answer).strip() == "<|im_end|>"
    prompt = tokenizer.decode(ids[labels == -100])
    assert "About me: I am 40." in prompt and "Question: What did Copperdeep do, case 7?" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")  # the served prompt ends exactly where the answer begins


def test_config_comes_from_yaml_with_overrides_and_rejects_unknown_keys(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("lora_r: 8\nepochs: 1\ntarget_modules: [q_proj, v_proj]\n")
    config = load_config(path, ["epochs=3", "learning_rate=0.001"])
    assert (config.lora_r, config.epochs, config.learning_rate) == (8, 3, 0.001)
    assert config.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(ValueError, match="lora_rank"):
        load_config(None, ["lora_rank=8"])
    with pytest.raises(ValueError, match="not key=value"):
        load_config(None, ["epochs"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dataset of 6 short examples and a real 3-step LoRA run on it."""
    home = tmp_path_factory.mktemp("train") / "home"
    settings = Settings(home=home, tracing=False, comet_mode="offline")
    write_dataset(settings, "abcdef123456",
                  [qa_example(i, f"Copperdeep raised its dividend by {i}% [1].") for i in range(1, 7)])

    return settings, train(settings, TrainConfig(max_steps=3, batch_size=2, lora_r=4, lora_alpha=8))


def test_a_short_real_run_saves_an_adapter_serving_can_load_and_tracks_everything(trained):
    settings, result = trained
    home = settings.home

    adapter = result["adapter_dir"]
    meta = json.loads((home / "runs" / result["run_id"] / "adapter" / "finassist.json").read_text())
    assert meta["prompt_version"] == "v1" and meta["dataset_version"] == "abcdef123456"
    assert meta["base_model"] == "SmolLM2-135M-Instruct"
    from finassist.llm.local import TransformersLLM

    served = TransformersLLM(adapter=adapter, models_dir=settings.models_path)
    assert served.info.prompt_version == "v1" and served.info.adapter

    import mlflow

    client = mlflow.MlflowClient(settings.tracking_uri)
    run = client.get_run(result["run_id"])
    params = run.data.params
    assert params["dataset_version"] == "abcdef123456" and params["base_model"] == "SmolLM2-135M-Instruct"
    assert params["prompt_version"] == "v1" and "hw.torch" in params and params["cfg.lora_r"] == "4"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 3  # per-step loss
    assert client.get_metric_history(run.info.run_id, "learning_rate")
    assert {"eval_loss", "train_loss", "train_seconds"} <= set(run.data.metrics)
    assert "adapter/adapter_config.json" in {
        f.path for f in client.list_artifacts(run.info.run_id, "adapter")
    }


def test_evaluation_compares_base_and_tuned_with_a_judge_and_logs_to_the_training_run(trained):
    from pathlib import Path

    from finassist.llm.remote import OpenAICompatibleLLM
    from finassist.training.evaluate import evaluate

    from fake_openai import FakeOpenAI

    settings, result = trained
    with FakeOpenAI(reply="4") as judge_server:
        judge = OpenAICompatibleLLM(judge_server.url, "judge", max_retries=0)
        report = evaluate(settings, Path(result["adapter_dir"]), max_new_tokens=8, judge=judge)
        judged = [r.messages[0]["content"] for r in judge_server.chat_requests]
    assert report["dataset_version"] == "abcdef123456" and report["run_id"] == result["run_id"]
    for model in ("base", "tuned"):
        scores = report[model]
        assert scores["examples"] >= 1 and scores["perplexity"] > 1 and 0 <= scores["rouge_l"] <= 1
        assert 0 <= scores["groundedness"] <= 1 and scores["judge"] == 4
    # The adapter learned the house style a little: the teacher's answers got more likely.
    assert report["tuned"]["perplexity"] < report["base"]["perplexity"]
    assert all("Reference answer: Copperdeep raised its dividend" in text for text in judged)

    import mlflow

    metrics = mlflow.MlflowClient(settings.tracking_uri).get_run(result["run_id"]).data.metrics
    assert metrics["heldout_tuned_perplexity"] == pytest.approx(report["tuned"]["perplexity"])
    assert "heldout_base_rouge_l" in metrics and "heldout_tuned_judge" in metrics


def test_the_run_is_mirrored_to_a_comet_offline_experiment(trained):
    """Comet ML (the reference course's tracker) gets the params, per-step loss, final metrics and the adapter."""
    import zipfile

    import mlflow

    settings, result = trained
    archive = result["comet"]
    assert archive.startswith(str(settings.home / "comet")) and archive.endswith(".zip")
    with zipfile.ZipFile(archive) as z:
        experiment = json.loads(z.read("experiment.json"))
        messages = [json.loads(line) for line in z.read("messages.json").splitlines()]
        names = z.namelist()
    assert experiment["project_name"] == "finassist" and "dataset_version:abcdef123456" in experiment["tags"]
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"]
              for m in messages if m["type"] == "parameter_msg"}
    assert params["cfg.lora_r"] == 4 and params["base_model"] == "SmolLM2-135M-Instruct"
    metrics = [m["payload"]["metric"] for m in messages if m["type"] == "metric_msg"]
    assert sorted(m["step"] for m in metrics if m["metricName"] == "loss") == [1, 2, 3]
    assert {"train_loss", "eval_loss"} <= {m["metricName"] for m in metrics}
    model_files = {m["payload"]["additional_params"]["fileName"] for m in messages
                   if m["payload"].get("additional_params", {}).get("groupingName") == "financial-assistant"}
    assert {"adapter/adapter_model.safetensors", "adapter/finassist.json"} <= model_files
    assert len(names) > len(model_files)  # the files themselves travel in the archive
    tags = mlflow.MlflowClient(settings.tracking_uri).get_run(result["run_id"]).data.tags
    assert tags["comet_experiment"] == experiment["offline_id"]


def test_comet_online_without_a_key_is_a_clear_error_and_auto_without_one_is_off(tmp_path):
    from finassist.training.tracking import CometRun

    with pytest.raises(ValueError, match="needs COMET_API_KEY"):
        CometRun.open(Settings(home=tmp_path, comet_mode="online", comet_api_key=None), "x")
    assert CometRun.open(Settings(home=tmp_path, comet_mode="auto", comet_api_key=None), "x") is None


def test_a_two_process_data_parallel_run_is_tracked_and_saved_once(trained):
    """torchrun (what `accelerate launch` wraps) with 2 CPU processes: both train (gloo), the main one alone tracks
    the run and saves the adapter."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import mlflow

    settings, _ = trained
    client = mlflow.MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("finassist-training").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment])}
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "FINASSIST_HOME": str(settings.home), "FINASSIST_COMET_MODE": "off", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "finassist.cli", "train", "--json",
         "--set", "max_steps=2", "--set", "lora_r=4", "--set", "lora_alpha=8"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    new = [r for r in client.search_runs([experiment]) if r.info.run_id not in before]
    assert len(new) == 1 and new[0].data.params["world_size"] == "2" and new[0].info.status == "FINISHED"
    assert (settings.home / "runs" / new[0].info.run_id / "adapter" / "adapter_config.json").is_file()
    assert not list(settings.home.glob("runs/.rank*/adapter"))
    summaries = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted("run_id" in s for s in summaries) == [False, True]  # one report per process, one run
