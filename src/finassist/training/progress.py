"""Progress of the long training-pipeline loops (teacher answers, training steps, evaluation) on stderr.

On a terminal: a rich bar. Elsewhere (logs, CI, `make run` piped to a file): one plain line per step, throttled, such
as `train step 3/12 loss 2.41 (14 s, ~42 s left)`. Never stdout: with --json its last line is the result.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

# Plain lines: at most one per MIN_INTERVAL_S, and one per 1/MAX_LINES of the phase unless HEARTBEAT_S passed without
# a line; the last always prints. A 27-minute run of 1,000 fast steps gives ~50 lines, one of 12 slow steps 12.
MIN_INTERVAL_S = 5.0
HEARTBEAT_S = 60.0
MAX_LINES = 50


class Progress:
    """`with Progress("train step", total) as p: p.update(done, "loss 2.41")`: a bar on a TTY, else lines."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None, bar: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = max(int(total), 0)
        self.stream = stream if stream is not None else sys.stderr
        self.bar = _isatty(self.stream) if bar is None else bar
        self.clock = clock
        self.started = clock()
        self.done = 0
        self._printed_at = self.started
        self._printed_done = 0
        self._rich: Any = None
        self._task: Any = None
        if self.bar and self.total:
            self._rich, self._task = _rich_bar(self.stream, label, self.total)

    def update(self, done: int, note: str = "") -> None:
        """`done` of `total` finished (absolute, so a repeated or skipped step is harmless); `note` e.g. the loss."""
        self.done = min(max(done, 0), self.total)
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, note=note)
            return
        now = self.clock()
        since = now - self._printed_at
        step_due = self.done - self._printed_done >= max(1, self.total / MAX_LINES)
        last = self.done >= self.total and self._printed_done < self.total
        if last or (since >= MIN_INTERVAL_S and (step_due or since >= HEARTBEAT_S)):
            self._printed_at, self._printed_done = now, self.done
            self.stream.write(self.line(note, now) + "\n")
            self.stream.flush()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.update(self.done + n, note)

    def line(self, note: str = "", now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        timing = f"{elapsed:.0f} s"
        if 0 < self.done < self.total:
            timing += f", ~{elapsed / self.done * (self.total - self.done):.0f} s left"
        return f"{self.label} {self.done}/{self.total}" + (f" {note}" if note else "") + f" ({timing})"

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without a terminal
        return False


def _rich_bar(stream: IO[str], label: str, total: int):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=Console(file=stream), transient=False,
    )
    task = bar.add_task(label, total=total, note="")
    bar.start()
    return bar, task


def trainer_callback(label: str = "train step"):
    """A transformers callback showing each optimizer step (with its loss when the trainer logs one) as progress."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        progress: Progress | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.progress = Progress(label, state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            # The default flow callback ran first: when it asked for a log, the step's loss follows in on_log.
            if self.progress is not None and not control.should_log:
                self.progress.update(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is not None and "loss" in (logs or {}):
                self.progress.update(state.global_step, f"loss {logs['loss']:.2f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.update(state.global_step)
                self.progress.close()
                self.progress = None

    return ProgressCallback()
