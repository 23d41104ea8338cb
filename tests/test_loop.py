"""Continuous training (`finassist loop`): when a cycle is due, the cycle's bookkeeping across crashes and Ctrl-C, the
lock, and three real runs — the first cycle promotes, the next check (no new news) skips, the second cycle (new
news, killed in the middle and restarted) trains and decides by the gate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finassist.training.loop import (
    PHASES,
    CycleOptions,
    LoopBusyError,
    LoopState,
    PhaseError,
    ServedQuality,
    cycle_lock,
    due,
    load_state,
    parse_every,
    run_cycle,
    save_state,
)

from conftest import article, write_jsonl

NOW = 1_800_000_000.0


# --- when a cycle is due (pure) ----------------------------------------------------------------------------------
def test_the_first_cycle_is_due_and_then_only_new_articles_or_time_make_one_due():
    assert due(LoopState(), 10, NOW, 20, None) == (True, "first cycle")
    done = LoopState(cycles=1, last_finished=NOW - 60, articles_at_last_dataset=100)
    run, why = due(done, 119, NOW, 20, None)
    assert not run and "19 new articles" in why
    run, why = due(done, 120, NOW, 20, None)
    assert run and "20 new articles" in why
    assert not due(done, 100, NOW, 20, every_s=3600)[0]
    run, why = due(done, 100, NOW + 3600, 20, every_s=3600)
    assert run and "since the last cycle" in why
    assert due(done, 100, NOW, 20, None, force=True) == (True, "forced (--now)")


def test_low_served_groundedness_makes_a_cycle_due_with_enough_answers_and_not_right_after_one():
    done = LoopState(cycles=1, last_finished=NOW - 2 * 3600, articles_at_last_dataset=100)
    low, high = ServedQuality(0.4, 100), ServedQuality(0.8, 100)
    run, why = due(done, 100, NOW, 20, None, quality=low, min_groundedness=0.6)
    assert run and why == "served groundedness 0.40 < 0.6 over the last 100 answers"
    assert not due(done, 100, NOW, 20, None, quality=high, min_groundedness=0.6)[0]
    assert not due(done, 100, NOW, 20, None, quality=ServedQuality(0.1, 5), min_groundedness=0.6)[0]  # too few
    assert not due(done, 100, NOW, 20, None, quality=low)[0]  # no floor set: quality is not a trigger
    assert not due(done, 100, NOW, 20, None, quality=None, min_groundedness=0.6)[0]  # serving unreadable
    just_trained = LoopState(cycles=2, last_finished=NOW - 600, articles_at_last_dataset=100)
    assert not due(just_trained, 100, NOW, 20, None, quality=low, min_groundedness=0.6)[0]  # give it time


def test_an_unfinished_cycle_is_due_again_whatever_the_news():
    crashed = LoopState(cycles=3, last_finished=NOW, articles_at_last_dataset=100,
                        in_progress={"cycle": 3, "phase": "train"})
    run, why = due(crashed, 100, NOW, 20, None)
    assert run and "cycle 3 did not finish (stopped in train)" in why


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400)])
def test_durations(text, seconds):
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "0h", "-1h", "6 hours", "h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_every(text)


# --- the cycle's bookkeeping -------------------------------------------------------------------------------------
def fake_phases(calls: list[str], dataset: dict | None = None, fail_in: str | None = None):
    def runner(name, args):
        calls.append(name)
        if name == fail_in:
            raise PhaseError(name, 1)
        return {
            "dataset": dataset or {"version": "v2", "new_version": True},
            "train": {"run_id": "r1", "metrics": {"train_loss": 1.5}},
            "evaluate": {"tuned": {"perplexity": 3.0}},
            "register": {"registered": {"name": "fa", "version": 2},
                         "promotion": {"promoted": True, "reason": "perplexity 3 < 4"}},
        }[name]

    return runner


def test_a_cycle_runs_the_phases_in_order_and_records_the_decision(tmp_path):
    calls: list[str] = []
    state = LoopState()
    result = run_cycle(state, tmp_path / "s.json", "first cycle", 7, CycleOptions(), fake_phases(calls))
    assert calls == list(PHASES)
    assert (result.decision, result.cycle) == ("promoted", 1) and "fa/2 is the champion" in result.detail
    saved = load_state(tmp_path / "s.json")
    assert saved.in_progress is None and saved.articles_at_last_dataset == 7 and saved.last_dataset == "v2"
    assert saved.cycles == 1 and saved.last_decision == "promoted"


def test_a_crash_leaves_the_cycle_in_progress_and_the_restart_runs_that_cycle_again(tmp_path):
    path = tmp_path / "s.json"
    calls: list[str] = []
    with pytest.raises(PhaseError):
        run_cycle(LoopState(), path, "first cycle", 7, CycleOptions(), fake_phases(calls, fail_in="train"))
    state = load_state(path)
    assert state.in_progress["phase"] == "train" and state.in_progress["cycle"] == 1 and state.cycles == 1
    run, why = due(state, 7, NOW, 20, None)
    assert run and "stopped in train" in why
    result = run_cycle(state, path, why, 7, CycleOptions(), fake_phases(calls := []))
    assert result.cycle == 1 and calls == list(PHASES)  # the same cycle, each (idempotent) phase again
    assert load_state(path).cycles == 1 and load_state(path).in_progress is None


def test_ctrl_c_stops_after_the_current_phase_and_the_next_start_resumes(tmp_path):
    path = tmp_path / "s.json"
    calls: list[str] = []
    result = run_cycle(LoopState(), path, "first cycle", 7, CycleOptions(), fake_phases(calls),
                       stop_requested=lambda: bool(calls))
    assert calls == ["dataset"] and result.decision == "stopped"
    assert load_state(path).in_progress["phase"] == "dataset"


def test_an_unchanged_dataset_ends_the_cycle_without_training(tmp_path):
    path = tmp_path / "s.json"
    state = LoopState(cycles=1, last_finished=NOW, articles_at_last_dataset=5, last_dataset="v1")
    calls: list[str] = []
    result = run_cycle(state, path, "every", 5, CycleOptions(), fake_phases(calls, {"version": "v1",
                                                                                   "new_version": False}))
    assert calls == ["dataset"] and result.decision == "skipped" and "unchanged" in result.detail


def test_a_corrupt_state_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(ValueError, match="delete it to start afresh"):
        load_state(tmp_path / "s.json")
    save_state(tmp_path / "ok.json", LoopState(cycles=2))
    assert load_state(tmp_path / "ok.json").cycles == 2 and not list(tmp_path.glob("*.tmp*"))


def test_one_cycle_at_a_time_and_a_killed_holder_releases_the_lock(tmp_path):
    lock = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from finassist.training.loop import "
         "cycle_lock\nwith cycle_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LoopBusyError, match=f"pid {holder.pid}"), cycle_lock(lock):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with cycle_lock(lock):  # the kernel dropped the dead holder's lock
        pass


# --- three real cycles ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_three_cycles_promote_then_skip_then_survive_a_kill_and_decide(tmp_path, home):
    config = tmp_path / "tiny.yaml"
    config.write_text("max_steps: 1\nbatch_size: 1\ngrad_accum: 1\nlora_r: 4\nlora_alpha: 8\nmax_length: 1024\n")
    env = {**os.environ, "FINASSIST_HOME": str(home), "FINASSIST_TEACHER_MAX_TOKENS": "24",
           "FINASSIST_TRACING": "false", "FINASSIST_TEACHER_MODEL": "student"}
    loop = [sys.executable, "-m", "finassist.cli", "loop", "--once", "--questions", "4", "--config", str(config),
            "--eval-examples", "1", "--eval-tokens", "4", "--min-new-articles", "3", "--news-questions", "2",
            "--json"]

    def ingest(rows, name):
        path = write_jsonl(tmp_path / name, rows)
        subprocess.run([sys.executable, "-m", "finassist.cli", "ingest", "file", str(path)], env=env, check=True,
                       capture_output=True, timeout=300)

    def cycle() -> dict:
        proc = subprocess.run(loop, capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    ingest([article(i, headline=f"Brookward Bank raises its dividend by {i} cents", symbols=["BRKW"])
            for i in range(1, 5)], "news1.jsonl")
    first = cycle()
    assert (first["cycle"], first["trigger"], first["decision"]) == (1, "first cycle", "promoted")
    assert list(first["phases"]) == list(PHASES)
    assert first["phases"]["dataset"]["questions"] == 4 + 1  # + one about the news (the same event 4 times)

    second = cycle()
    assert second["decision"] == "skipped" and "0 new articles" in second["detail"] and not second["phases"]

    ingest([article(i, headline=f"Voltrix raises its revenue outlook by {i} percent", symbols=["VLTX"])
            for i in range(10, 14)], "news2.jsonl")
    killed = subprocess.Popen(loop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    state_path = home / "loop" / "state.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = json.loads(state_path.read_text())
        if (state.get("in_progress") or {}).get("phase") == "train":
            break
        time.sleep(0.5)
    else:
        pytest.fail("the third cycle never reached its train phase")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    third = cycle()
    assert third["cycle"] == 2, third  # a check that found nothing due was no cycle
    assert "cycle 2 did not finish (stopped in train)" in third["trigger"]
    assert third["decision"] in ("promoted", "kept champion") and list(third["phases"]) == list(PHASES)
    assert third["phases"]["dataset"]["new_version"] is False  # made before the kill, reused
    assert json.loads(state_path.read_text())["in_progress"] is None

    from finassist.config import Settings
    from finassist.training.loop import LOOP_EXPERIMENT
    from finassist.training.tracking import mlflow_client

    _, client = mlflow_client(Settings(home=home))
    experiment = client.get_experiment_by_name(LOOP_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags
               and r.info.status == "FINISHED"}
    killed_runs = [r for r in runs if r.info.status == "KILLED"]
    assert [r.info.run_name for r in killed_runs] == ["cycle 2"]  # the attempt that died, superseded
    assert parents["cycle 2"].data.tags["resumes"] == killed_runs[0].info.run_id
    assert parents["cycle 1"].data.tags["decision"] == "promoted"
    assert parents["cycle 2"].data.tags["decision"] == third["decision"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == third["run_id"]]
    assert sorted(r.data.tags["phase"] for r in children) == sorted(PHASES)
    assert not list(Path(home, "loop").glob("*.tmp*"))
