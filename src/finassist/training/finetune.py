"""Fine-tuning: LoRA (QLoRA on CUDA) of a causal LM on a dataset version, with trl's SFTTrainer.

Each example is the serving prompt (`prompt.training_messages`, the one template) as a conversational
prompt/completion pair, so the loss is on the answer tokens only (trl's `completion_only_loss`). Batches group
examples of similar length (less padding on CPU); `packing` is available for GPUs with FlashAttention. The adapter is
saved with `finassist.json` (base model, prompt version, dataset version) so serving builds the same prompts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from finassist.config import Settings
from finassist.llm.base import ADAPTER_META
from finassist.prompt import PROMPT_VERSION, training_messages
from finassist.training.dataset import QAExample, load_dataset

log = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Training knobs (YAML file + `--set key=value` overrides). Defaults finish in minutes on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field("", description="HF id or path; empty = FINASSIST_LLM_MODEL or the packaged model.")
    dataset: str | None = Field(None, description="Dataset version; default the newest.")
    lora_r: int = Field(16, ge=1, le=512)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1 = run the epochs).")
    learning_rate: float = Field(2e-4, gt=0)
    # One sequence per forward pass: on 2 CPU cores 1.4x the tokens/s of batches of 4, at 0.3x the peak memory
    # (benchmarks/train.py); on a GPU raise batch_size.
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(4, ge=1)
    max_length: int = Field(2048, ge=64, description="Longer examples are truncated (the answer end first).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    packing: bool = Field(False, description="Pack sequences (needs FlashAttention on a GPU); else length-grouping.")
    qlora: bool | None = Field(None, description="4-bit NF4 base (bitsandbytes); default: on with CUDA.")
    gradient_checkpointing: bool = False
    seed: int = 42
    logging_steps: int = Field(1, ge=1)


def load_config(path: Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A YAML config (optional) with `key=value` overrides (values parsed as YAML: 3, 0.1, true, [q_proj])."""
    raw: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of training settings")
        raw.update(loaded)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value")
        raw[key.strip()] = yaml.safe_load(value)
    return TrainConfig.model_validate(raw)


def config_hash(config: TrainConfig, base_model: str, dataset_version: str) -> str:
    """Identifies what a run learned from: the same hash means retraining would repeat it (seeds are fixed)."""
    payload = config.model_dump(exclude={"dataset"}) | {"base_model": base_model, "dataset": dataset_version,
                                     "prompt_version": PROMPT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_run(settings: Settings, config: TrainConfig) -> dict[str, Any] | None:
    """The summary of a finished run of this config on this dataset (the newest), or None."""
    from finassist.llm.local import base_model_name
    from finassist.training.tracking import TRAINING_EXPERIMENT, adapter_for_run, mlflow_client

    manifest, _, _ = load_dataset(settings, config.dataset)
    base_name = base_model_name(config.base_model or settings.llm_model)
    wanted = config_hash(config, base_name, manifest["version"])
    _, client = mlflow_client(settings)
    experiment = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.config_hash = '{wanted}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    run = runs[0]
    adapter = adapter_for_run(settings, run.info.run_id)
    meta = json.loads((adapter / ADAPTER_META).read_text())
    return {"run_id": run.info.run_id, "adapter_dir": str(adapter), "artifact_uri": run.info.artifact_uri,
            "reused": True, **meta}


def to_conversation(example: QAExample) -> dict[str, list[dict[str, str]]]:
    """The example as trl's conversational prompt/completion: loss falls on the completion (the answer) only."""
    messages = training_messages(example.question, example.context, example.answer, example.about_me,
                                 version=example.prompt_version)
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "torch": torch.__version__,
                            "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info |= {"gpu": torch.cuda.get_device_name(0), "gpu_count": torch.cuda.device_count()}
    return info


def train(settings: Settings, config: TrainConfig, run_name: str | None = None) -> dict[str, Any]:
    """Fine-tune, track the run in MLflow, save the adapter; returns the run's summary (ids, metrics, paths)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from finassist.llm.local import base_model_name, base_model_source
    from finassist.training.tracking import TRAINING_EXPERIMENT, CometRun, experiment_id, mlflow_client

    manifest, train_rows, eval_rows = load_dataset(settings, config.dataset)
    if not train_rows:
        raise ValueError(f"dataset {manifest['version']} has no training examples")
    versions = {e.prompt_version for e in train_rows + eval_rows}
    if versions != {PROMPT_VERSION}:
        raise ValueError(f"dataset {manifest['version']} uses prompt versions {sorted(versions)}, not {PROMPT_VERSION}")
    set_seed(config.seed)
    base = config.base_model or settings.llm_model
    source = base_model_source(base, settings.models_path)
    base_name = base_model_name(base)
    cuda = torch.cuda.is_available()
    qlora = cuda if config.qlora is None else config.qlora
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model_kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if qlora:
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model_kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))} if cuda else None
    model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)

    # Under `accelerate launch` / torchrun every process trains; the main one alone tracks and saves.
    rank = int(os.environ.get("RANK", "0"))
    mlflow, _ = mlflow_client(settings)
    started = time.monotonic()
    tracked = (mlflow.start_run(experiment_id=experiment_id(settings, TRAINING_EXPERIMENT), run_name=run_name)
               if rank == 0 else contextlib.nullcontext())
    with tracked as run:
        out_dir = settings.home / "runs" / (run.info.run_id if run else f".rank{rank}")
        params = {
            **{f"cfg.{k}": v for k, v in config.model_dump().items()},
            "base_model": base_name,
            "dataset_version": manifest["version"],
            "prompt_version": PROMPT_VERSION,
            "train_examples": len(train_rows),
            "eval_examples": len(eval_rows),
            "qlora": qlora,
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            **{f"hw.{k}": v for k, v in hardware().items()},
        }
        tags = {"dataset_version": manifest["version"], "base_model": base_name, "prompt_version": PROMPT_VERSION,
                "config_hash": config_hash(config, base_name, manifest["version"]),
                # Who wrote the answers it learns, and whether that was the model being trained (no distillation).
                "teacher": manifest.get("teacher", "unknown"), "student": base_name,
                "self_taught": str(manifest.get("teacher") == f"local:{base_name}").lower()}
        trainer = make_trainer(model, tokenizer, config, train_rows, eval_rows, out_dir, report_to=["mlflow"])
        comet = None
        if run:
            mlflow.log_params(params)
            mlflow.set_tags(tags)
            comet = CometRun.open(settings, run.info.run_name)
        if comet is not None:
            comet.log_params(params)
            trainer.add_callback(comet.callback())
            mlflow.set_tag("comet_experiment", comet.key)
        try:
            result = trainer.train()
        except BaseException:
            if comet is not None:
                comet.abort()
            raise
        metrics = {"train_loss": result.training_loss, "train_seconds": time.monotonic() - started,
                   "train_runtime": result.metrics["train_runtime"], "train_steps": result.global_step}
        if eval_rows:
            metrics["eval_loss"] = trainer.evaluate()["eval_loss"]  # collective under DDP: every rank calls it
        if not run:
            return {"rank": rank, "metrics": metrics}
        adapter_dir = out_dir / "adapter"
        trainer.model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        meta = {"base_model": base_name, "prompt_version": PROMPT_VERSION, "dataset_version": manifest["version"],
                "run_id": run.info.run_id, "metrics": metrics}
        (adapter_dir / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
        summary = {"run_id": run.info.run_id, "adapter_dir": str(adapter_dir), "artifact_uri": run.info.artifact_uri,
                   **meta}
        if comet is not None:
            summary["comet"] = comet.finish({k: float(v) for k, v in metrics.items()}, tags, adapter_dir,
                                            settings.registry_model)
        return summary


def make_trainer(model, tokenizer, config: TrainConfig, train_rows: list[QAExample], eval_rows: list[QAExample],
                 out_dir: Path, report_to: list[str] | None = None):
    """trl's SFTTrainer for these examples: LoRA on `model`, loss on the answers only."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    report_to = report_to or []
    args = SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type="cosine",
        logging_steps=config.logging_steps,
        eval_strategy="epoch" if eval_rows else "no",
        save_strategy="no",
        seed=config.seed,
        data_seed=config.seed,
        max_length=config.max_length,
        completion_only_loss=True,
        packing=config.packing,
        train_sampling_strategy="sequential" if config.packing else "group_by_length",
        activation_checkpointing=config.gradient_checkpointing,
        bf16=cuda,
        report_to=report_to,  # "mlflow": the callback logs loss, eval loss, learning rate to the active run
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=config.target_modules, task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([to_conversation(e) for e in train_rows]),
        eval_dataset=Dataset.from_list([to_conversation(e) for e in eval_rows]) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=lora,
    )
    from transformers import PrinterCallback

    from finassist.training.progress import trainer_callback

    trainer.remove_callback(PrinterCallback)  # it prints log dicts to stdout, which belongs to --json results
    trainer.add_callback(trainer_callback())  # steps and loss on stderr, a line each in logs
    return trainer
