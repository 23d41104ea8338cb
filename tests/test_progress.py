"""The long-loop progress helper: throttled plain lines off a terminal, a rich bar on one, never stdout."""

from __future__ import annotations

import io
import re

from finassist.training.progress import MAX_LINES, Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(total: int, seconds_per_step: float, notes: bool = False) -> list[str]:
    clock, out = FakeClock(), io.StringIO()
    with Progress("train step", total, stream=out, bar=False, clock=clock) as progress:
        for step in range(1, total + 1):
            clock.now += seconds_per_step
            progress.update(step, f"loss {1 / step:.2f}" if notes else "")
    return out.getvalue().splitlines()


def test_slow_steps_print_one_line_each_with_note_elapsed_and_time_left():
    lines = run_steps(12, 30.0, notes=True)
    assert len(lines) == 12
    assert lines[2] == "train step 3/12 loss 0.33 (90 s, ~270 s left)"
    assert lines[-1] == "train step 12/12 loss 0.08 (360 s)"


def test_a_long_run_of_fast_steps_prints_a_bounded_number_of_lines_ending_with_the_last():
    lines = run_steps(1000, 1.0)
    assert 10 <= len(lines) <= MAX_LINES + 1
    assert lines[-1] == "train step 1000/1000 (1000 s)"
    assert all(re.fullmatch(r"train step \d+/1000 \(\d+ s(, ~\d+ s left)?\)", line) for line in lines)


def test_a_phase_faster_than_the_throttle_prints_only_its_last_line():
    assert run_steps(20, 0.1) == ["train step 20/20 (2 s)"]


def test_repeating_the_last_step_does_not_print_it_twice():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("dataset answers", 2, stream=out, bar=False, clock=clock)
    progress.update(2)
    progress.update(2)
    progress.close()
    assert out.getvalue() == "dataset answers 2/2 (0 s)\n"


def test_on_a_terminal_the_bar_goes_to_the_given_stream_and_nothing_to_stdout(capsys):
    out = io.StringIO()
    with Progress("evaluate base answers", 3, stream=out, bar=True) as progress:
        progress.update(3, "done")
    assert "evaluate base answers" in out.getvalue() and "3/3" in out.getvalue()
    assert capsys.readouterr().out == ""


def test_without_a_terminal_the_default_is_plain_lines():
    assert Progress("x", 1, stream=io.StringIO()).bar is False
