"""Continuous training: decide when a training cycle is due, run it, record what it decided (`finassist loop`).

A cycle is the training pipeline's own commands in order — dataset generate → train → evaluate → model register
--promote — each in its own process, each idempotent. So a cycle that crashed is simply run again: what it finished
(cached teacher answers, the dataset version, the finished training run, its evaluation, the registered version) is
reused, and what it had not finished runs. A cycle is due when the feature store has grown by enough articles since
the last dataset, when `every` has passed since the last cycle, when serving's rolling groundedness fell below a
floor (`--min-groundedness`, read from the API's /metrics), when forced, or when the last one did not finish.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOOP_EXPERIMENT = "finassist-continuous-training"
PHASES = ("dataset", "train", "evaluate", "register")


class LoopBusyError(RuntimeError):
    """Another loop process holds the cycle lock."""


class PhaseError(RuntimeError):
    def __init__(self, phase: str, code: int):
        super().__init__(f"phase {phase} failed (exit {code}); its error is above")
        self.phase, self.code = phase, code


@dataclass
class LoopState:
    """What the loop remembers between cycles and restarts (FINASSIST_HOME/loop/state.json)."""

    cycles: int = 0  # cycles started
    last_finished: float | None = None  # epoch seconds
    articles_at_last_dataset: int | None = None
    last_dataset: str | None = None  # the dataset version the last finished cycle trained on
    last_decision: str | None = None
    in_progress: dict[str, Any] | None = None  # {"cycle", "phase", "started", "articles", "dataset"}


def load_state(path: Path) -> LoopState:
    if not path.is_file():
        return LoopState()
    try:
        raw = json.loads(path.read_text())
        return LoopState(**{k: v for k, v in raw.items() if k in LoopState.__dataclass_fields__})
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"unreadable loop state {path}: {exc}; delete it to start afresh") from exc


def save_state(path: Path, state: LoopState) -> None:
    """Atomically: a crash while writing leaves the previous state, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(state), indent=1))
    os.replace(tmp, path)


def parse_every(text: str) -> float:
    """'6h', '30m', '90s', '1d' → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 30m, 6h, 1d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@dataclass(frozen=True)
class ServedQuality:
    """Serving's rolling groundedness (its /metrics gauge) and how many answers it covers."""

    groundedness: float
    answers: int


QUALITY_MIN_ANSWERS = 20  # fewer graded answers say too little to retrain on
QUALITY_COOLDOWN_S = 3600.0  # a quality trigger waits this long after a cycle: retraining takes time to show


def due(
    state: LoopState, articles: int, now: float, min_new: int, every_s: float | None, force: bool = False,
    quality: ServedQuality | None = None, min_groundedness: float | None = None,
) -> tuple[bool, str]:
    """Whether a cycle should run now, and why (or why not). Pure."""
    if force:
        return True, "forced (--now)"
    if state.in_progress:
        p = state.in_progress
        return True, f"cycle {p.get('cycle')} did not finish (stopped in {p.get('phase')}): running it again"
    if state.articles_at_last_dataset is None:
        return True, "first cycle"
    new = articles - state.articles_at_last_dataset
    if new >= min_new:
        return True, f"{new} new articles in the feature store since the last dataset (>= {min_new})"
    if every_s is not None and state.last_finished is not None and now - state.last_finished >= every_s:
        return True, f"{(now - state.last_finished) / 3600:.1f} h since the last cycle (every {every_s / 3600:g} h)"
    if (
        quality is not None and min_groundedness is not None and quality.answers >= QUALITY_MIN_ANSWERS
        and quality.groundedness < min_groundedness
        and (state.last_finished is None or now - state.last_finished >= QUALITY_COOLDOWN_S)
    ):
        return True, (f"served groundedness {quality.groundedness:.2f} < {min_groundedness:g} over the last "
                      f"{quality.answers} answers")
    return False, f"no new data: {new} new articles since the last dataset (< {min_new})"


@contextlib.contextmanager
def cycle_lock(path: Path) -> Iterator[None]:
    """One cycle at a time. An flock: the kernel releases it when its holder dies, so a crashed loop never keeps
    it. The file keeps the holder's pid for the error message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise LoopBusyError(f"another `finassist loop` (pid {holder}) is running a cycle ({path})") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The phase process gets SIGTERM when the loop dies (Linux PR_SET_PDEATHSIG), so a killed loop leaves no phase
    running behind it that its restart would race. Its own session: Ctrl-C reaches the loop, not the phase."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def run_phase(name: str, args: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One pipeline command (`finassist <args> --json`) in its own process: its JSON result, or PhaseError."""
    proc = subprocess.run(
        [sys.executable, "-m", "finassist.cli", *args, "--json"], stdout=subprocess.PIPE, text=True,
        env=env, start_new_session=True, preexec_fn=_die_with_parent,
    )
    if proc.returncode != 0:
        raise PhaseError(name, proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class CycleOptions:
    questions: int | None = None  # dataset generate --limit
    k: int | None = None
    config: Path | None = None
    eval_examples: int | None = None
    eval_tokens: int = 96
    teacher_budget: int | None = None  # dataset generate --max-teacher-calls: new questions asked per cycle
    news_questions: int = 8  # dataset generate --from-news: questions about the newest articles

    def commands(self) -> dict[str, list[str]]:
        dataset = ["dataset", "generate"]
        dataset += ["--limit", str(self.questions)] if self.questions else []
        dataset += ["--max-teacher-calls", str(self.teacher_budget)] if self.teacher_budget is not None else []
        dataset += ["--from-news", str(self.news_questions)] if self.news_questions else []
        dataset += ["--k", str(self.k)] if self.k else []
        train = ["train", "--reuse", *(["--config", str(self.config)] if self.config else [])]
        evaluate = ["evaluate", "--reuse", "--max-tokens", str(self.eval_tokens)]
        evaluate += ["--limit", str(self.eval_examples)] if self.eval_examples else []
        register = ["model", "register", "--promote"]
        return {"dataset": dataset, "train": train, "evaluate": evaluate, "register": register}


@dataclass
class CycleResult:
    cycle: int
    trigger: str
    decision: str  # "promoted", "kept champion", "skipped", "stopped", "failed"
    detail: str
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None  # the MLflow parent run

    def line(self) -> str:
        if not self.phases:  # not due: nothing ran
            return f"cycle {self.cycle + 1} not due: {self.detail}"
        took = sum(self.seconds.values())
        return f"cycle {self.cycle}: {self.decision} — {self.detail} ({self.trigger}; {took:.0f} s)"


def decide(register: dict[str, Any]) -> tuple[str, str]:
    """The cycle's decision from `model register --promote`'s result."""
    version = register.get("registered", {})
    promotion = register.get("promotion", {})
    label = f"{version.get('name')}/{version.get('version')}"
    if promotion.get("promoted"):
        return "promoted", f"{label} is the champion: {promotion.get('reason', '')}"
    return "kept champion", f"{label} not promoted: {promotion.get('reason', '')}"


PhaseRunner = Callable[[str, Sequence[str]], dict[str, Any]]


def run_cycle(
    state: LoopState,
    state_path: Path,
    trigger: str,
    articles: int,
    options: CycleOptions,
    runner: PhaseRunner,
    stop_requested: Callable[[], bool] = lambda: False,
    on_phase: Callable[[str, dict[str, Any], float], None] = lambda *_: None,
    run_id: str | None = None,
) -> CycleResult:
    """Run (or resume) one cycle: each phase, the state saved before and after it, so a crash anywhere leaves a
    state that says which cycle to run again. Stops after the current phase when `stop_requested()`."""
    resumed = state.in_progress
    cycle = resumed["cycle"] if resumed else state.cycles + 1
    if not resumed:
        state.cycles = cycle
    state.in_progress = {**(resumed or {}), "cycle": cycle, "started": time.time(), "articles": articles,
                         "run_id": run_id}
    result = CycleResult(cycle, trigger, "failed", "", run_id=run_id)
    commands = options.commands()
    for phase in PHASES:
        state.in_progress["phase"] = phase
        save_state(state_path, state)
        started = time.monotonic()
        out = runner(phase, commands[phase])
        result.seconds[phase] = round(time.monotonic() - started, 1)
        result.phases[phase] = out
        on_phase(phase, out, result.seconds[phase])
        if phase == "dataset":
            state.in_progress["dataset"] = out.get("version")
            if not out.get("new_version") and out.get("version") == state.last_dataset:
                result.decision, result.detail = "skipped", f"dataset {out.get('version')} unchanged: nothing to train"
                break
        if phase == "register":
            result.decision, result.detail = decide(out)
        if stop_requested() and phase != PHASES[-1]:
            result.decision, result.detail = "stopped", f"stopped after {phase} (interrupted); the next start resumes"
            return result  # in_progress stays: the next start runs this cycle again
    state.last_finished = time.time()
    state.articles_at_last_dataset = articles
    state.last_dataset = state.in_progress.get("dataset")
    state.last_decision = result.decision
    state.in_progress = None
    save_state(state_path, state)
    return result
