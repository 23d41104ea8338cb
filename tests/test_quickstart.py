"""`finassist quickstart` (`make run`): every phase in order, timed, and a second run reuses what the first made."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import article, write_jsonl
from newsgen import voltrix_guidance

pytestmark = pytest.mark.slow


def test_quickstart_runs_every_phase_and_a_rerun_reuses_everything(tmp_path, home):
    news = write_jsonl(tmp_path / "news.jsonl", [voltrix_guidance(1)] + [
        article(i, headline=f"Brookward Bank raises its dividend by {i} cents", symbols=["BRKW"],
                summary=f"Brookward Bank lifted its quarterly dividend by {i} cents to 0.{i}0 dollars a share.")
        for i in range(2, 6)
    ])
    config = tmp_path / "tiny.yaml"
    config.write_text("max_steps: 1\nbatch_size: 1\ngrad_accum: 1\nlora_r: 4\nlora_alpha: 8\nmax_length: 1024\n")
    args = [sys.executable, "-m", "finassist.cli", "quickstart", "--news", str(news), "--questions", "6",
            "--config", str(config), "--eval-examples", "1", "--eval-tokens", "4", "--no-serve"]
    env = {"FINASSIST_HOME": str(home), "FINASSIST_TEACHER_MAX_TOKENS": "24", "FINASSIST_TRACING": "false"}

    def run() -> str:
        import os

        proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout

    first = run()
    for phase in ("ingest", "dataset", "train", "evaluate", "register", "total"):
        assert f"  {phase} " in first, first
    assert "5 articles written" in first and "(new)" in first and "financial-assistant/1: champion" in first
    second = run()
    assert "0 articles written, 5 unchanged" in second and "(unchanged)" in second and "0 answers generated" in second
    assert "reused run" in second and "reused: perplexity" in second
    assert "financial-assistant/1: not promoted (financial-assistant/1 already is the champion)" in second
    from finassist.config import Settings
    from finassist.registry import ModelRegistry

    versions = ModelRegistry(Settings(home=home)).versions("financial-assistant")
    assert [(v.version, v.aliases) for v in versions] == [(1, ("champion",))]
    assert json.loads((home / "runs" / versions[0].run_id / "adapter" / "finassist.json").read_text())["run_id"]
