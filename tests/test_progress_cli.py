"""A real tiny `finassist train` in a subprocess whose stderr is a pipe (as in a log or CI): step progress lines on
stderr, one JSON value on stdout, and none of the model stack's non-actionable warnings."""

from __future__ import annotations

import json
import re

import pytest

from finassist.config import Settings

from conftest import finassist, qa_example, write_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("progress") / "home"
    write_dataset(Settings(home=home), "abcdef654321",
                  [qa_example(i, f"Copperdeep raised its dividend by {i}% [1].") for i in range(1, 7)])
    settings = ["max_steps=3", "batch_size=1", "grad_accum=1", "lora_r=4", "lora_alpha=8", "max_length=256"]
    return finassist("train", *[a for s in settings for a in ("--set", s)], "--json",
                     env={"FINASSIST_HOME": str(home), "FINASSIST_COMET_MODE": "off"}, check=False)


def test_training_prints_step_progress_lines_on_a_non_tty_stderr_and_keeps_stdout_one_json_value(trained):
    assert trained.returncode == 0, trained.stderr[-4000:]
    lines = trained.stdout.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["metrics"]["train_steps"] == 3
    steps = [line for line in trained.stderr.splitlines() if line.startswith("train step ")]
    assert steps and steps[-1].startswith("train step 3/3 loss "), trained.stderr[-4000:]
    assert all(re.fullmatch(r"train step [123]/3 loss \d+\.\d\d \(\d+ s(, ~\d+ s left)?\)", s) for s in steps)
    assert "\r" not in trained.stderr  # no bar redrawn in place: a log reads line by line


def test_a_cli_command_prints_neither_the_bitsandbytes_kernel_warning_nor_a_transformers_future_warning(trained):
    # Training imports peft (and with it bitsandbytes) and wraps the model with LoRA: both used to warn here.
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert "gemm_4bit_forward" not in trained.stderr and "pip install kernels" not in trained.stderr
    assert "FutureWarning" not in trained.stderr, trained.stderr[-4000:]
