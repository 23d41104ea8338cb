"""Experiment tracking adapter: MLflow (embedded sqlite under FINASSIST_HOME by default, or FINASSIST_MLFLOW_URI)."""

from __future__ import annotations

import logging
import warnings
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
    return client.create_experiment(name, artifact_location=settings.artifact_location)


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
            with warnings.catch_warnings():  # a local folder "can be interpreted in multiple ways" (both local)
                warnings.simplefilter("ignore", UserWarning)
                data = mlflow.data.from_pandas(frame, source=str(folder), name="financial-qa",
                                               digest=report["version"])
            mlflow.log_input(data, context=split)
        mlflow.log_artifacts(str(folder), artifact_path="dataset")
        return run.info.run_id


def latest_training_run(settings: Settings) -> str:
    """The id of the newest finished training run (the default for `evaluate` and `model register`)."""
    _, client = mlflow_client(settings)
    experiment = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
        max_results=1,
    ) if experiment else []
    if not runs:
        raise ValueError("no finished training run yet: finassist train")
    return runs[0].info.run_id


def adapter_for_run(settings: Settings, run_id: str) -> Path:
    """A local folder with the run's adapter: the one `train` saved here, else downloaded from the run."""
    local = settings.home / "runs" / run_id / "adapter"
    if (local / "adapter_config.json").is_file():
        return local
    mlflow, _ = mlflow_client(settings)
    target = settings.home / "runs" / run_id
    target.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="adapter", dst_path=str(target)))


class CometRun:
    """Comet ML mirror of one training run (the reference course's tracker): params, per-step metrics, final
    metrics, tags and the adapter as a model. Online with an API key, or an `OfflineExperiment` archive that
    `comet upload` sends later. Comet's own auto-logging and telemetry stay off (see finassist/__init__.py)."""

    def __init__(self, experiment, mode: str, folder: Path | None = None) -> None:
        self.experiment = experiment
        self.mode = mode
        self.folder = folder  # offline archives

    @classmethod
    def open(cls, settings: Settings, name: str) -> CometRun | None:
        mode = settings.comet_mode
        if mode == "auto":
            mode = "online" if settings.comet_api_key else "off"
        if mode == "off":
            return None
        import comet_ml

        quiet = {
            "project_name": settings.comet_project, "workspace": settings.comet_workspace, "log_code": False,
            "log_graph": False, "parse_args": False, "auto_output_logging": False, "log_git_metadata": False,
            "log_git_patch": False, "auto_param_logging": False, "auto_metric_logging": False,
            "display_summary_level": 0, "log_env_network": False, "log_env_disk": False,
        }
        if mode == "online":
            if not settings.comet_api_key:
                raise ValueError("FINASSIST_COMET_MODE=online needs COMET_API_KEY")
            experiment = comet_ml.Experiment(api_key=settings.comet_api_key.get_secret_value(), **quiet)
        else:
            folder = settings.home / "comet"
            folder.mkdir(parents=True, exist_ok=True)
            experiment = comet_ml.OfflineExperiment(offline_directory=str(folder), **quiet)
        experiment.set_name(name)
        return cls(experiment, mode, None if mode == "online" else folder)

    @property
    def key(self) -> str:
        return self.experiment.get_key()

    def callback(self):
        """A transformers callback sending the trainer's logs (loss, learning rate, eval loss) at their step."""
        from transformers import TrainerCallback

        experiment = self.experiment

        class _Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float)}
                if numbers and state.is_world_process_zero:
                    experiment.log_metrics(numbers, step=state.global_step, epoch=state.epoch)

        return _Callback()

    def log_params(self, params: dict[str, Any]) -> None:
        self.experiment.log_parameters(params)

    def finish(self, metrics: dict[str, float], tags: dict[str, str], adapter_dir: Path, model_name: str) -> str:
        """Final metrics, tags and the adapter; ends the experiment. Returns where it went."""
        self.experiment.log_metrics(metrics)
        self.experiment.add_tags([f"{k}:{v}" for k, v in tags.items()])
        self.experiment.log_model(model_name, str(adapter_dir))
        self.experiment.end()
        if self.folder is not None:
            return str(self.folder / f"{self.key}.zip")
        return self.experiment.url or self.key

    def abort(self) -> None:
        self.experiment.end()
