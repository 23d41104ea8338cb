"""Experiment tracking adapter: MLflow (embedded sqlite under FINASSIST_HOME by default, or FINASSIST_MLFLOW_URI)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from finassist.config import Settings

log = logging.getLogger(__name__)

DATASETS_EXPERIMENT = "finassist-datasets"
TRAINING_EXPERIMENT = "finassist-training"


def mlflow_client(settings: Settings):
    """MLflow pointed at the configured store; artifacts of new experiments under FINASSIST_HOME (not ./mlruns)."""
    import mlflow

    settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    return mlflow, mlflow.MlflowClient(settings.tracking_uri)


def experiment_id(settings: Settings, name: str) -> str:
    _, client = mlflow_client(settings)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=settings.artifacts_dir.resolve().as_uri())


def log_dataset(settings: Settings, report: dict[str, Any], folder: Path) -> str:
    """One MLflow run per dataset version: its counts, teacher, prompt version, the data as an MLflow dataset
    (train/eval inputs) and the files as artifacts. Returns the run id."""
    import pandas as pd

    mlflow, client = mlflow_client(settings)
    exp = experiment_id(settings, DATASETS_EXPERIMENT)
    existing = client.search_runs([exp], f"tags.dataset_version = '{report['version']}'", max_results=1)
    if existing:
        return existing[0].info.run_id
    with mlflow.start_run(experiment_id=exp, run_name=f"dataset-{report['version']}") as run:
        mlflow.set_tags({"dataset_version": report["version"], "teacher": report["teacher"]})
        mlflow.log_params(
            {k: report[k] for k in ("teacher", "prompt_version", "questions") if k in report}
            | {"retrieval_k": settings.retrieval_k, "eval_fraction": settings.dataset_eval_fraction}
        )
        mlflow.log_metrics(
            {k: float(report[k]) for k in ("train", "eval", "dropped_empty", "dropped_refusal", "dropped_duplicate",
                                            "failed", "generated", "reused") if k in report}
        )
        for split in ("train", "eval"):
            frame = pd.read_json(folder / f"{split}.jsonl", lines=True)
            if not frame.empty:
                frame["context"] = frame["context"].map(lambda hits: [h["article_id"] for h in hits])
            data = mlflow.data.from_pandas(frame, source=str(folder), name="financial-qa", digest=report["version"])
            mlflow.log_input(data, context=split)
        mlflow.log_artifacts(str(folder), artifact_path="dataset")
        return run.info.run_id
