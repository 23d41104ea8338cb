"""Crash-resume and multi-process runs of the real CLI (each test starts real processes)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

from conftest import finassist, finassist_cluster, write_jsonl
from newsgen import make_articles

BATCH = 8  # articles per micro-batch in the kill test


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def reference_points(tmp_path, path) -> int:
    """Points a clean, uninterrupted single-process run leaves in a separate store."""
    out = finassist("ingest", "file", str(path), "--json", env={"FINASSIST_HOME": str(tmp_path / "reference")})
    return out["points"]


def test_sigkill_mid_run_then_rerun_resumes_with_nothing_lost_or_duplicated(tmp_path, home):
    rows = make_articles(80, long_every=4)
    for i, row in enumerate(rows):  # one article a second, replayed at 3x: the input lasts 27 s
        row["created_at"] = row["updated_at"] = f"2026-09-01T10:{i // 60:02d}:{i % 60:02d}Z"
    path = write_jsonl(tmp_path / "news.jsonl", rows)
    # The default epoch length: a resume must re-read at most the micro-batch that was in flight.
    env = {**os.environ, "FINASSIST_LOG_LEVEL": "INFO", "FINASSIST_BATCH_ARTICLES": str(BATCH)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "finassist.cli", "ingest", "file", str(path), "--speed", "3", "--json"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    # The first write carries what piled up while the model loaded; kill once a few epochs have committed after it.
    written, batches = 0, 0
    deadline = time.monotonic() + 240
    while batches < 4 and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        if m := re.search(r"wrote (\d+) articles", line):
            written, batches = written + int(m.group(1)), batches + 1
    assert batches == 4 and written < len(rows), "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert any((home / "recovery").iterdir()), "no recovery state was left to resume from"

    batch_env = {"FINASSIST_BATCH_ARTICLES": str(BATCH)}
    resumed = finassist("ingest", "file", str(path), "--speed", "3", "--json", env=batch_env)

    assert resumed["articles_in"] < len(rows), "the rerun read the file from the start instead of resuming"
    reread = resumed["articles_in"] - (len(rows) - written)
    assert reread <= BATCH, f"the resume re-read {reread} stored articles: more than one micro-batch ({BATCH})"
    assert resumed["points"] == reference_points(tmp_path, path)
    info = finassist("store", "info", "--json")
    assert info["articles"] == len(rows)
    assert not any((home / "recovery").iterdir()), "a completed run must clear its recovery state"


def test_two_process_cluster_ingests_everything_once(tmp_path, home):
    rows = make_articles(30, long_every=0)
    path = write_jsonl(tmp_path / "news.jsonl", [*rows, "{bad json"])
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(2))
    results = finassist_cluster(
        ["ingest", "file", str(path), "--workers", "1", "--addresses", addresses],
        [{"FINASSIST_PROCESS_ID": str(i)} for i in range(2)],
        timeout=240,
    )
    writer = max(results, key=lambda r: r["articles_in"])
    assert (writer["articles_in"], writer["articles_ok"], writer["quarantined"]) == (31, 30, 1)
    assert sorted(r["process_id"] for r in results) == [0, 1]
    assert writer["points"] == reference_points(tmp_path, path)
