"""`finassist ingest backfill|stream` end to end: the real CLI, alpaca-py clients and a local fake Alpaca."""

from __future__ import annotations

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


class StreamProcess:
    """`finassist ingest stream` in a subprocess, with its stderr read on a thread (so waits can time out)."""

    def __init__(self, fake: FakeAlpaca):
        env = {**os.environ, **alpaca_env(fake), "FINASSIST_LOG_LEVEL": "INFO", "FINASSIST_EPOCH_SECONDS": "0.2"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "finassist.cli", "ingest", "stream", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        subscribed = fake.subscriptions
        try:
            fake.wait_until(lambda: fake.subscriptions > subscribed, timeout=120)  # news before that is not streamed
        except BaseException:
            self.proc.kill()
            raise

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)

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

    def interrupt(self) -> dict:
        time.sleep(1)  # let an epoch (0.2 s) commit the resume state after the last write
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, "".join(self.log)[-3000:]
        return json.loads(out.strip().splitlines()[-1])


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
