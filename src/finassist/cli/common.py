"""What every `finassist` command shares: the Typer apps, option types, settings, output and error conventions.
With --json the last stdout line is one JSON value; progress and logs go to stderr."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="finassist: a financial assistant on FTI pipelines.")
ingest_app = typer.Typer(no_args_is_help=True, help="Feature pipeline: news → Bytewax → Qdrant feature store.")
store_app = typer.Typer(no_args_is_help=True, help="Inspect or reset the feature store.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluations.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(store_app, name="store")
app.add_typer(eval_app, name="eval")
dataset_app = typer.Typer(no_args_is_help=True, help="Training data: questions + news → teacher answers → versions.")
app.add_typer(dataset_app, name="dataset")
model_app = typer.Typer(no_args_is_help=True, help="Model registry: register adapters, promote the champion.")
app.add_typer(model_app, name="model")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON value as the last stdout line.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-w", min=1, help="Worker threads per process.")]
ProcOpt = Annotated[int | None, typer.Option("--process-id", "-i", min=0, help="This process's index in a cluster.")]
AddrOpt = Annotated[
    str | None, typer.Option("--addresses", "-a", help='Cluster addresses "host:port;host:port" (one per process).')
]

log = logging.getLogger("finassist")


def load_settings():
    from finassist.config import Settings

    try:
        return Settings()
    except Exception as e:  # pydantic's ValidationError: make it a one-line user error
        fail(f"invalid configuration: {e}")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def emit(value: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(value, default=str) + "\n")
        sys.stdout.flush()
    else:
        typer.echo(human if human is not None else json.dumps(value, indent=2, default=str))


def parse_when(value: str) -> datetime:
    """ISO date/datetime (naive = UTC), or a relative age such as 90m, 24h, 7d, 2w."""
    m = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}
        return datetime.now(UTC) - delta[unit]
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"not a date/time or age (e.g. 2026-09-01, 2026-09-01T13:30:00Z, 7d): {value!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_symbols(value: str | None) -> list[str]:
    return [s.strip().upper() for s in (value or "").split(",") if s.strip()]


def parse_cluster(process_id: int | None, addresses: str | None, settings) -> tuple[int | None, list[str] | None]:
    """This process's index and the cluster's addresses: the flags, else FINASSIST_PROCESS_ID/_CLUSTER_ADDRESSES."""
    process_id = process_id if process_id is not None else settings.process_id
    addresses = addresses or settings.cluster_addresses
    addrs = [a.strip() for a in addresses.split(";") if a.strip()] if addresses else None
    if addrs and process_id is None:
        fail("--addresses needs --process-id")
    if addrs and process_id is not None and process_id >= len(addrs):
        fail(f"--process-id {process_id} is out of range for {len(addrs)} addresses")
    return process_id, addrs


def setup_logging() -> None:
    from finassist.llm.library_noise import silence_library_noise

    silence_library_noise()  # every command calls this before it imports the model stack
    level = os.environ.get("FINASSIST_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # Library progress bars (weights loading, trl's dataset preparation) drown the commands' own progress lines.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    # MLflow announces migrations and queue flushes at INFO (it configures its logger itself, from this variable).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def alpaca_settings():
    """Settings for an Alpaca source, failing early (and without echoing any value) when keys are missing."""
    from finassist.feature.sources.alpaca import alpaca_credentials

    setup_logging()
    settings = load_settings()
    try:
        alpaca_credentials(settings)
    except ValueError as e:
        fail(str(e))
    return settings
