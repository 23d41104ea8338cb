"""Shared fixtures and helpers. Tests never need ../shared, a GPU or the network: they use the packaged model and
servers on 127.0.0.1. tests/ goes on sys.path so helper modules (`newsgen`, `fake_alpaca`) import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The packaged LLM is converted from GGUF once (~25 s) and shared by every test and CLI subprocess.
os.environ.setdefault("FINASSIST_MODELS_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "models"))
# MLflow writes traces asynchronously; tests read them right after a request.
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")


def article(article_id: Any = 1, **overrides: Any) -> dict[str, Any]:
    """One valid article in Alpaca's JSON schema; override any field (including with invalid values)."""
    row = {
        "id": article_id,
        "headline": f"Headline {article_id}",
        "summary": "",
        "content": "",
        "author": "Test Desk",
        "url": f"https://news.example.com/{article_id}",
        "source": "test",
        "symbols": ["NVLT"],
        "created_at": "2026-09-01T13:30:00Z",
        "updated_at": "2026-09-01T13:30:00Z",
    }
    row.update(overrides)
    return row


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows as JSON lines; a row that is already a string is written as is (for malformed records)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def finassist(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 300) -> Any:
    """Run the real CLI in a subprocess. With check and --json: the parsed last stdout line; else the process."""
    proc = subprocess.run(
        [sys.executable, "-m", "finassist.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if not check:
        return proc
    assert proc.returncode == 0, f"finassist {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]) if "--json" in args else proc


def ingest_rows(settings, rows: list[Any], path: Path) -> Any:
    """Write `rows` as JSONL at `path` and run them through the real feature pipeline in this process."""
    from finassist.feature.flow import job_key, run_flow
    from finassist.feature.sources.file import NewsFileSource

    write_jsonl(path, rows)
    return run_flow(NewsFileSource([path], batch_size=8), settings, job_key("file", [str(path)], settings))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh FINASSIST_HOME for one test (and for the CLI subprocesses it starts)."""
    path = tmp_path / "home"
    monkeypatch.setenv("FINASSIST_HOME", str(path))
    yield path
    from finassist.store import close_stores

    close_stores()


@pytest.fixture
def settings(home: Path):
    from finassist.config import Settings

    return Settings(home=home)


@pytest.fixture(scope="session")
def embedder():
    from finassist.embed import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def tokenizer():
    """The packaged model's tokenizer, loaded without torch."""
    from tokenizers import Tokenizer

    from finassist.embed import default_model_path

    tok = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@pytest.fixture(scope="session")
def llm():
    """The packaged SmolLM2-135M-Instruct on the transformers backend, loaded once per session."""
    from finassist.config import Settings
    from finassist.llm import open_llm

    return open_llm(Settings())
