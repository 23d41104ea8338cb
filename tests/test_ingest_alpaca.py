"""`finassist ingest backfill|stream` end to end: the real CLI, alpaca-py clients and a local fake Alpaca."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from conftest import finassist, finassist_cluster
from fake_alpaca import FakeAlpaca, make_article, parse_ts


@pytest.fixture
def fake():
    with FakeAlpaca() as server:
        yield server


def alpaca_env(fake: FakeAlpaca) -> dict[str, str]:
    return {
        "ALPACA_API_KEY": fake.key,
        "ALPACA_API_SECRET": fake.secret,
        "FINASSIST_ALPACA_DATA_URL": fake.rest_url,
        "FINASSIST_ALPACA_STREAM_URL": fake.stream_url,
        "FINASSIST_ALPACA_PAGE_LIMIT": "4",
        "FINASSIST_STREAM_MAX_BACKOFF_S": "0.5",
    }


def test_backfill_ingests_every_article_once_including_slice_borders(fake, home):
    start = datetime(2026, 9, 1, tzinfo=UTC)
    end = start + timedelta(days=8)
    # 2 workers x 4 slices per worker = 8 one-day slices: put articles exactly on every border.
    times = [start + timedelta(days=d) for d in range(8)] + [start + timedelta(days=d, hours=5) for d in range(8)]
    fake.add_articles(*(make_article(100 + i, t, symbols=["NVLT"]) for i, t in enumerate(times)))
    fake.add_articles(make_article(999, end, symbols=["NVLT"]))  # at `end`: excluded, end is exclusive

    out = finassist(
        "ingest",
        "backfill",
        "--start",
        "2026-09-01",
        "--end",
        "2026-09-09",
        "--workers",
        "2",
        "--json",
        env=alpaca_env(fake),
    )

    assert (out["articles_in"], out["articles_written"], out["quarantined"]) == (16, 16, 0)
    assert finassist("store", "info", "--json")["articles"] == 16


def test_a_two_process_backfill_slices_the_range_across_all_workers_with_addresses_from_config(fake, home):
    """2 processes x 2 workers = 4 workers x 4 slices each: 16 slices of 12 h; articles sit on every border."""
    from api_server import free_port

    start = datetime(2026, 9, 1, tzinfo=UTC)
    borders = [start + timedelta(hours=12 * i) for i in range(16)]
    fake.add_articles(*(make_article(300 + i, t, symbols=["NVLT"]) for i, t in enumerate(borders)))
    fake.add_articles(*(make_article(400 + i, t + timedelta(hours=3)) for i, t in enumerate(borders)))
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(2))
    base = {**alpaca_env(fake), "FINASSIST_CLUSTER_ADDRESSES": addresses, "FINASSIST_WORKERS": "2"}
    results = finassist_cluster(["ingest", "backfill", "--start", "2026-09-01", "--end", "2026-09-09"],
                                [{**base, "FINASSIST_PROCESS_ID": str(i)} for i in range(2)])
    assert sorted(r["process_id"] for r in results) == [0, 1]
    writer = max(results, key=lambda r: r["articles_in"])
    assert (writer["articles_in"], writer["articles_written"], writer["quarantined"]) == (32, 32, 0)
    # Every process asked Alpaca for its own slices only, and together they covered the range once.
    asked = {(parse_ts(r["start"]), parse_ts(r["end"])) for r in fake.rest_requests}
    assert sorted(asked) == [(b, b + timedelta(hours=12)) for b in borders]
    assert finassist("store", "info", "--json")["articles"] == 32


def test_backfill_with_wrong_keys_fails_clearly_without_leaking_them(fake, home):
    env = {**alpaca_env(fake), "ALPACA_API_KEY": "wrong-key-id-123", "ALPACA_API_SECRET": "wrong-secret-456"}
    proc = finassist("ingest", "backfill", "--start", "2026-09-01", "--end", "2026-09-02", env=env, check=False)
    assert proc.returncode != 0
    assert "credentials" in proc.stderr.lower()
    assert "wrong-key-id-123" not in proc.stderr + proc.stdout and "wrong-secret-456" not in proc.stderr + proc.stdout


def test_backfill_without_keys_names_the_variables(home):
    env = {k: "" for k in ("ALPACA_API_KEY", "ALPACA_API_SECRET", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY")}
    proc = finassist("ingest", "backfill", "--start", "2026-09-01", env=env, check=False)
    assert proc.returncode == 2 and "ALPACA_API_KEY" in proc.stderr


# Ctrl-C to summary line: the dataflow stopped (the source's close() included) and the store was counted; ~0.2 s idle.
STOP_WITHIN_S = 30
# Summary line to exit: interpreter teardown of the ~6,000 modules torch/transformers load, ~3 s of CPU idle, and it
# stretches with the machine's load; generous so a busy CI machine does not fail the test.
EXIT_WITHIN_S = 120


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A child that Ctrl-C (SIGINT) reaches however the suite was started. A shell starts a background job
    (`pytest ... &`, `nohup ... &`) with SIGINT ignored, children inherit that, and Python then installs no
    KeyboardInterrupt handler: the stream tests' SIGINT did nothing and they hung (seen in full-suite runs started
    that way, never in the foreground). The child gets SIGINT's default back, as a terminal's Ctrl-C would find it."""
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint
    )


def test_children_get_a_working_ctrl_c_even_when_the_suite_runs_with_sigint_ignored():
    was = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job of a non-interactive shell
    try:
        probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
        child = spawn([sys.executable, "-c", probe], dict(os.environ))
        out, err = child.communicate(timeout=60)
    finally:
        signal.signal(signal.SIGINT, was)
    assert out.strip() == "True", err


class StreamProcess:
    """`finassist ingest stream` in a subprocess, with its stdout and stderr read on threads (so waits can time out)."""

    def __init__(self, fake: FakeAlpaca, **env_overrides: str):
        env = {
            **os.environ,
            **alpaca_env(fake),
            "FINASSIST_LOG_LEVEL": "INFO",
            "FINASSIST_EPOCH_SECONDS": "0.2",
            "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread's stack (see `interrupt`)
            **env_overrides,
        }
        self.proc = spawn([sys.executable, "-m", "finassist.cli", "ingest", "stream", "--json"], env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.stop_s = self.exit_s = float("nan")
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True).start()
        try:
            # News published before the source has handled the server's subscription ack is not streamed, and a
            # fresh stream's watermark starts at the ack's time: news stamped before it never moves the watermark
            # (on a loaded machine the ack can be handled after the test stamped its first article; seen in CI).
            # So wait for the source's log of the ack, then until the test's stamps (now - 1 ms) are past it.
            line = self.wait_log(r"news stream subscribed at ", timeout=120)
            live_at = datetime.fromisoformat(re.search(r"subscribed at ([^\s;]+)", line).group(1))
            while datetime.now(UTC) - timedelta(milliseconds=2) <= live_at:
                time.sleep(0.001)
        except BaseException:
            self.proc.kill()
            raise

    @staticmethod
    def _pump(pipe, lines: queue.Queue[str]) -> None:
        for line in pipe:
            lines.put(line)

    def wait_log(self, pattern: str, timeout: float) -> str:
        """The first stderr line matching `pattern`; fails with the log after `timeout` s or when the process ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no log line matching {pattern!r}\n" + "".join(self.log)[-3000:])

    def wait_written(self, n: int, timeout: float = 60) -> int:
        written, deadline = 0, time.monotonic() + timeout
        while written < n and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.log.append(line)
            if m := re.search(r"wrote (\d+) articles", line):
                written += int(m.group(1))
        return written

    def interrupt(self, settle_s: float = 1.0) -> dict:
        """Ctrl-C: the summary must come within STOP_WITHIN_S, the exit (status 0) within EXIT_WITHIN_S."""
        time.sleep(settle_s)  # let an epoch (0.2 s) commit the resume state after the last write
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        summary = None
        while summary is None and time.monotonic() - sent < STOP_WITHIN_S:
            try:
                line = self.out.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.out.empty():
                    break
                continue
            if line.startswith("{"):
                summary = json.loads(line)
        self.stop_s = time.monotonic() - sent
        if summary is None and self.proc.poll() is None:
            # Stuck: where? Every thread's stack, via faulthandler.
            self.proc.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            time.sleep(0.5)  # the pump thread reads the dump
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(1.0, EXIT_WITHIN_S - self.stop_s))
        self.exit_s = time.monotonic() - sent
        self._drain_log()
        assert summary is not None, f"no summary {self.stop_s:.0f} s after SIGINT\n" + "".join(self.log)[-8000:]
        assert self.proc.returncode == 0, f"rc {self.proc.returncode} after {self.exit_s:.0f} s\n" + "".join(
            self.log
        )[-3000:]
        return summary

    def _drain_log(self) -> None:
        while not self.lines.empty():
            self.log.append(self.lines.get_nowait())


@pytest.fixture
def streams():
    """Stream processes started by a test; killed at teardown even when the test fails."""
    started: list[StreamProcess] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(timeout=30)


def test_stream_ingests_live_news_and_backfills_what_it_missed_while_down(fake, home, streams):
    def now() -> datetime:  # live news is stamped as it happens; the REST gap backfill ends at the server's now
        return datetime.now(UTC) - timedelta(milliseconds=1)

    stream = StreamProcess(fake)
    streams.append(stream)
    for i in range(3):
        fake.publish(make_article(500 + i, now(), symbols=["HRBR"]))
    assert stream.wait_written(3) == 3, "".join(stream.log)[-3000:]
    first = stream.interrupt()
    assert first["interrupted"] is True and first["articles_written"] == 3

    # Published while the pipeline is down: only the REST API has it; the restarted stream backfills the gap.
    fake.add_articles(make_article(600, now(), symbols=["HRBR"]))
    stream = StreamProcess(fake)
    streams.append(stream)
    fake.publish(make_article(601, now(), symbols=["HRBR"]))
    assert stream.wait_written(2) == 2, "".join(stream.log)[-3000:]
    second = stream.interrupt()
    assert second["articles_written"] == 2
    assert finassist("store", "info", "--json")["articles"] == 5


def test_stream_outage_with_updates_and_late_stamped_news_loses_nothing_and_duplicates_nothing(
    fake, home, settings, streams
):
    """While the socket is down: 5 updates to stored articles, 5 new ones created 20 s before they went out. The
    catch-up used to ask for created_at >= the last updated_at seen and got none of the 10."""

    def now() -> datetime:
        return datetime.now(UTC) - timedelta(milliseconds=1)

    stream = StreamProcess(fake)
    streams.append(stream)
    for i in range(5):
        fake.publish(make_article(700 + i, now(), symbols=["HRBR"]))
    assert stream.wait_written(5) == 5, "".join(stream.log)[-3000:]

    with fake.outage():
        at = now()
        for i in range(5):
            fake.publish(fake.updated(700 + i, at, headline=f"Harbor Freight update {i}"))
        for i in range(5):
            fake.publish(make_article(710 + i, at - timedelta(seconds=20), symbols=["HRBR"]))
        fake.wait_until(lambda: fake.refused >= 1, timeout=30)  # it tried to come back while the server was down
    assert stream.wait_written(10, timeout=60) == 10, "".join(stream.log)[-3000:]
    fake.publish(fake.stored(700))  # the same versions once more, live: nothing to write
    fake.publish(fake.stored(712))
    result = stream.interrupt(settle_s=2)

    assert (result["articles_written"], result["articles_stale"]) == (15, 0)
    info = finassist("store", "info", "--json")
    assert (info["points"], info["articles"]) == (10, 10)  # one chunk per article, one copy of each
    from finassist.store import open_store

    ids = [str(700 + i) for i in range(5)] + [str(710 + i) for i in range(5)]
    newest = {str(i): parse_ts(fake.stored(int(i))["updated_at"]).timestamp() for i in ids}
    assert open_store(settings).versions(ids) == newest


def test_ctrl_c_stops_the_stream_promptly_in_backoff_and_while_backfilling_and_the_resume_state_survives(
    fake, home, streams
):
    def now() -> datetime:
        return datetime.now(UTC) - timedelta(milliseconds=1)

    stream = StreamProcess(fake, FINASSIST_STREAM_MAX_BACKOFF_S="30")  # reconnects back off 1, 2, 4 ... 30 s
    streams.append(stream)
    fake.publish(make_article(799, now(), symbols=["HRBR"]))
    fake.publish(make_article(800, now(), symbols=["HRBR"]))
    assert stream.wait_written(2) == 2, "".join(stream.log)[-3000:]
    with fake.outage():
        fake.add_articles(make_article(801, now(), symbols=["HRBR"]))  # missed: only the REST API has it
        fake.wait_until(lambda: fake.refused >= 2, timeout=30)  # now sleeping 1-2 s, then 2-4 s ...
        in_backoff = stream.interrupt(settle_s=0.3)
    assert in_backoff["interrupted"] is True and in_backoff["articles_written"] == 2

    with fake.rest_stall():  # the restarted stream's gap backfill waits on a server that stopped answering
        stream = StreamProcess(fake)
        streams.append(stream)
        fake.wait_until(lambda: fake.rest_stalled >= 1, timeout=30)
        reading = stream.interrupt(settle_s=0.3)
    assert reading["interrupted"] is True and reading["articles_written"] == 0

    # Neither interruption moved the resume state past 801: the next run backfills it. The catch-up overlap reads 799
    # and 800 again: 800 is the watermark's own (dropped by the source), 799 reaches the store, which keeps its copy.
    stream = StreamProcess(fake)
    streams.append(stream)
    assert stream.wait_written(1) == 1, "".join(stream.log)[-3000:]
    resumed = stream.interrupt()
    assert (resumed["articles_written"], resumed["articles_unchanged"]) == (1, 1)
    assert finassist("store", "info", "--json")["articles"] == 3
