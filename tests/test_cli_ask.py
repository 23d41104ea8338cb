"""`finassist ask`: the served chain, in-process from the command line."""

from __future__ import annotations

import pytest

from finassist.store import close_stores

from conftest import article, finassist, ingest_rows

pytestmark = pytest.mark.slow


@pytest.fixture
def news_home(home, settings, tmp_path):
    rows = [
        article(
            7,
            headline="Copperdeep Mining Doubles Its Dividend",
            content="<p>Copperdeep Mining doubled its quarterly dividend to $0.50 a share.</p>",
            symbols=["CPRD"],
        ),
        article(8, headline="Havenrock Realty Buys Warehouses", symbols=["HVNR"]),
    ]
    ingest_rows(settings, rows, tmp_path / "news.jsonl")
    close_stores()  # the CLI runs in another process: the embedded store must be free
    return home


def test_ask_prints_one_json_answer_with_sources_and_usage(news_home):
    env = {"FINASSIST_TRACING": "false"}
    out = finassist("ask", "What did Copperdeep do with its dividend?", "--max-tokens", "8", "--json", env=env)
    assert out["answer"].strip()
    assert out["sources"][0]["article_id"] == "7" and out["symbols"] == ["CPRD"]
    assert out["usage"]["completion_tokens"] == 8 and out["prompt_version"] == "v1"


def test_ask_streams_the_answer_then_lists_the_sources(news_home):
    proc = finassist("ask", "Havenrock news?", "--symbols", "HVNR", "--max-tokens", "6", env={"FINASSIST_TRACING": "0"})
    assert "Sources:" in proc.stdout and "[1] Havenrock Realty Buys Warehouses" in proc.stdout


def test_ask_rejects_bad_input_with_a_clear_message(news_home):
    proc = finassist("ask", "x" * 2_001, check=False)
    assert proc.returncode == 2 and "question" in proc.stderr and "2000" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_with_several_workers_needs_a_qdrant_server_and_no_in_process_pipeline(home, tmp_path):
    """Each worker would open the embedded store, which one process only may hold: refuse before starting."""
    proc = finassist("serve", "--workers", "2", check=False)
    assert proc.returncode == 2 and "--workers needs a Qdrant server (FINASSIST_QDRANT_URL)" in proc.stderr
    news = tmp_path / "n.jsonl"
    news.write_text("")
    proc = finassist("serve", "--workers", "2", "--ingest-file", str(news), check=False,
                     env={"FINASSIST_QDRANT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2 and "run the feature pipeline as its own process" in proc.stderr


def test_serve_with_two_workers_answers_from_two_processes_on_one_port(home, tmp_path):
    """`serve --workers 2`: uvicorn runs two processes, each building the app from the environment (here the
    Qdrant URL is qdrant-client's in-process mode, so each worker has its own empty store)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from api_server import free_port, wait_ready

    port = free_port()
    env = {**os.environ, "FINASSIST_QDRANT_URL": ":memory:", "FINASSIST_TRACING": "false"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "finassist.cli", "serve", "--port", str(port), "--workers", "2"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, alive=lambda: proc.poll() is None)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        cmdlines = [Path(f"/proc/{c}/cmdline").read_text().replace("\0", " ") for c in children]
        workers = [c for c in cmdlines if "spawn_main" in c]  # not multiprocessing's resource tracker
        assert len(workers) == 2, (tmp_path / "serve.log").read_text()[-3000:]
        # Each worker's llama.cpp gets its share of the cores, not all of them (2 workers would oversubscribe).
        share = str(max(1, min(8, os.cpu_count() or 1) // 2))
        for c in children:
            if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text():
                environ = Path(f"/proc/{c}/environ").read_bytes().split(b"\0")
                assert f"FINASSIST_LLM_THREADS={share}".encode() in environ
        ready: set[int] = set()
        deadline = time.monotonic() + 180
        while len(ready) < 2 and time.monotonic() < deadline:  # requests land on either worker: wait for both
            r = httpx.get(f"{url}/readyz", timeout=10)
            if r.status_code == 200:
                ready.add(r.json()["pid"])
            else:
                time.sleep(0.2)
        worker_pids = {int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()}
        assert ready == worker_pids, (ready, worker_pids)
        answer = httpx.post(f"{url}/v1/ask", json={"question": "Anything new?", "max_tokens": 4}, timeout=120)
        assert answer.status_code == 200 and answer.json()["sources"] == []
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()
