"""Shared fixtures and helpers. Tests never need ../shared, a GPU or the network: they use the packaged model and
servers on 127.0.0.1. tests/ goes on sys.path so helper modules (`newsgen`, `fake_alpaca`) import."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
# Never the user's data (`make` exports FINASSIST_HOME=.finassist): tests that need a home make their own.
_SESSION_HOME = tempfile.mkdtemp(prefix="finassist-tests-")
atexit.register(shutil.rmtree, _SESSION_HOME, True)
os.environ["FINASSIST_HOME"] = _SESSION_HOME
# The base model unless a test asks for the registry's champion (the default outside tests).
os.environ["FINASSIST_LLM_ADAPTER"] = ""
# The student teaches itself unless a test names a teacher: where the Qwen catalog models are installed the default
# teacher would be the 1.5B one (minutes per dataset on 2 cores), and CI has only SmolLM2, so tests would differ.
os.environ["FINASSIST_TEACHER_MODEL"] = "student"
os.environ["FINASSIST_TEACHER_BASE_URL"] = ""


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


def finassist_cluster(args: list[str], envs: list[dict[str, str]], timeout: float = 300) -> list[dict[str, Any]]:
    """`finassist ARGS --json` as one process per env at once (a cluster); each must succeed; their JSON results."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "finassist.cli", *args, "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
        for env in envs
    ]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-2000:] for _, err in outs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


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

    return open_llm(Settings(llm_backend="transformers"), adapter="")


def qa_example(i: int, answer: str, prompt_version: str = "v1"):
    """A training example about a made-up dividend rise of `i` percent, with one news hit as its context."""
    from datetime import UTC, datetime

    from finassist.domain import Hit
    from finassist.training.dataset import QAExample

    hit = Hit(article_id=str(i), headline=f"Copperdeep Mining News {i}", score=0.9,
              created_at=datetime(2026, 11, 1, tzinfo=UTC), updated_at=datetime(2026, 11, 1, tzinfo=UTC),
              symbols=["CPRD"], text=f"Copperdeep Mining raised its dividend by {i}%.", chunk_index=0)
    return QAExample(id=f"q{i:03d}", about_me="I am 40.", question=f"What did Copperdeep do, case {i}?",
                     context=[hit], answer=answer, teacher="test", prompt_version=prompt_version,
                     created_at=datetime.now(UTC))


def write_dataset(settings, version: str, examples: list, eval_fraction: float = 0.3) -> Path:
    """`examples` stored as dataset `version` (split by question) the way `dataset generate` stores one."""
    from finassist.training.dataset import MANIFEST, split_by_question

    train_rows, eval_rows = split_by_question(examples, eval_fraction)
    folder = settings.datasets_dir / version
    folder.mkdir(parents=True)
    for name, rows in (("train.jsonl", train_rows), ("eval.jsonl", eval_rows)):
        (folder / name).write_text("".join(e.model_dump_json() + "\n" for e in rows))
    (folder / MANIFEST).write_text(json.dumps({"version": version, "created_at": "2026-11-23T00:00:00"}))
    return folder
