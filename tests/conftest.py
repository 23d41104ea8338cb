"""Shared test helpers and fixtures. tests/ goes on sys.path so helper modules (`newsgen`, `fake_alpaca`) import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finassist.config import Settings


def article(article_id: Any = 1, **overrides: Any) -> dict[str, Any]:
    """One valid article in Alpaca's JSON schema; override any field (including with invalid values)."""
    row = {
        "id": article_id,
        "headline": f"Novalith Semiconductors update {article_id}",
        "summary": "Novalith reported quarterly results.",
        "content": "<p>Novalith Semiconductors said revenue rose 12 percent.</p>",
        "author": "Test Desk",
        "url": f"https://news.example/{article_id}",
        "source": "test",
        "symbols": ["NVLT"],
        "created_at": "2026-09-01T00:00:00Z",
        "updated_at": "2026-09-01T00:00:00Z",
    }
    row.update(overrides)
    return row


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows as JSON lines; a row that is already a string is written as is (for malformed records)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def finassist(*args: str, check: bool = True) -> Any:
    """Run the CLI in a subprocess. With check and --json: the parsed last stdout line; else the CompletedProcess."""
    cmd = [sys.executable, "-c", "from finassist.cli import app; app()", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if not check:
        return proc
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]) if "--json" in args else proc


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("FINASSIST_HOME", str(path))
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


@pytest.fixture(scope="session")
def embedder():
    from finassist.embed import get_embedder

    return get_embedder()


@pytest.fixture(scope="session")
def tokenizer(embedder):
    return embedder.tokenizer
