"""The fault matrix, rerun in one command: what is lost, duplicated, escaped or abandoned (all must be 0).

    python benchmarks/faults.py [--only kill,resume,stream,fuzz,api] [--kills 5] [--askers 20] [--ask-seconds 60]

- kill:   `finassist ingest file` SIGKILLed `--kills` times mid-run (after a random 1–3 written micro-batches), then
          run to completion; compared with an uninterrupted run of the same file in another home: lost = articles
          missing, duplicated = points beyond the reference's, plus quarantine entries listed twice.
- resume: per Bytewax epoch length (2 s, 0.25 s), kill -9 once 1,024 articles are stored and rerun: how many
          stored articles the resume reads again (at most the micro-batch in flight is the target).
- stream: benchmarks/stream_faults.py: 10 websocket drops, with updates and late-stamped articles published during
          each outage (lost / duplicated versions).
- fuzz:   10,000 Hypothesis-generated hostile records (tests/test_fuzz_records.py's strategy) through validate →
          clean → chunk, *without* the pipeline's per-record guard: escaped = exceptions out of a transform.
- api:    `finassist serve` with an API key on the sample news (packaged model): `--askers` clients posting /v1/ask
          for `--ask-seconds` (each gives up after 30 s), then oversized headers, slowloris and a chunked 2 MB
          body (benchmarks/api_abuse.py). abandoned = requests still queued or generating 2 s after every client
          left (work for nobody); every probe must end in its 4xx, not a hang.

Input data: ../shared/data/benzinga_headlines.jsonl.gz (its first 3,000 headlines) plus data/sample_news.jsonl
(articles with HTML bodies). Prints a markdown summary to stderr and one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
HEADLINES = ROOT.parent / "shared" / "data" / "benzinga_headlines.jsonl.gz"
SAMPLE = ROOT / "data" / "sample_news.jsonl"
CLI = [sys.executable, "-m", "finassist.cli"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FINASSIST_HOME": str(home), "FINASSIST_LLM_ADAPTER": "", **extra}


def _cli_json(args: list[str], env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    proc = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"finassist {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def news_file(folder: Path, headlines: int) -> Path:
    """Benzinga headlines (real, short) interleaved with the sample articles (long HTML bodies)."""
    rows = SAMPLE.read_text().splitlines()
    if HEADLINES.is_file():
        with gzip.open(HEADLINES, "rt") as f:
            rows += [line.rstrip("\n") for _, line in zip(range(headlines), f, strict=False)]
    random.Random(0).shuffle(rows)
    path = folder / "news.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def ingest_then_kill(path: Path, env: dict[str, str], batches: int = 0, articles: int = 0) -> tuple[int, int]:
    """Start `ingest file`, SIGKILL it once it has written `batches` micro-batches or `articles` articles (whichever
    is asked); returns (batches, articles) written before the kill."""
    proc = subprocess.Popen([*CLI, "ingest", "file", str(path), "--json"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    seen = written = 0
    while (batches and seen < batches) or (articles and written < articles):
        line = proc.stderr.readline()
        if not line:
            break
        if m := re.search(r"wrote (\d+) articles", line):
            seen, written = seen + 1, written + int(m.group(1))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return seen, written


# --- kill -9 mid-ingest --------------------------------------------------------------------------------------------
def kill_matrix(kills: int, headlines: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="faults-kill-") as tmp:
        tmp_path = Path(tmp)
        path = news_file(tmp_path, headlines)
        reference = _cli_json(["ingest", "file", str(path)], _env(tmp_path / "reference"))
        ref_info = _cli_json(["store", "info"], _env(tmp_path / "reference"))
        home = tmp_path / "killed"
        env = _env(home, FINASSIST_LOG_LEVEL="INFO")
        killed_after = []
        for _ in range(kills):
            killed_after.append(ingest_then_kill(path, env, batches=rng.randint(1, 3))[0])
        final = _cli_json(["ingest", "file", str(path)], env)
        info = _cli_json(["store", "info"], env)
        qfile = home / "quarantine.jsonl"
        keys = [json.loads(line).get("key") for line in qfile.read_text().splitlines()] if qfile.exists() else []
    return {
        "kills": kills,
        "killed_after_batches": killed_after,
        "lines": reference["articles_in"],
        "reference_articles": ref_info["articles"],
        "articles": info["articles"],
        "lost": max(ref_info["articles"] - info["articles"], 0),
        "duplicated": max(info["points"] - ref_info["points"], 0) + len(keys) - len(set(keys)),
        "quarantined": reference["quarantined"],
        "final_run_read": final["articles_in"],
    }


# --- how much a resume re-reads ----------------------------------------------------------------------------------
def resume_matrix(headlines: int, epochs: tuple[float, ...] = (2.0, 0.25), stored: int = 1024) -> dict[str, Any]:
    """Per epoch length: kill -9 once `stored` articles are written, rerun, count the stored articles re-read."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="faults-resume-") as tmp:
        path = news_file(Path(tmp), headlines)
        for epoch in epochs:
            env = _env(Path(tmp) / f"epoch-{epoch}", FINASSIST_LOG_LEVEL="INFO", FINASSIST_EPOCH_SECONDS=str(epoch))
            _, written = ingest_then_kill(path, env, articles=stored)
            rerun = _cli_json(["ingest", "file", str(path)], env)
            lines = len(path.read_text().splitlines())
            resumed_at = lines - rerun["articles_in"]
            out[f"epoch_{epoch:g}s"] = {"stored_before_kill": written, "reread_stored": written - resumed_at}
    return out


# --- hostile records -----------------------------------------------------------------------------------------------
def fuzz_matrix(batches: int = 500) -> dict[str, Any]:
    """Counts of each outcome over `batches` × 20 generated records; escaped must be 0."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from tokenizers import Tokenizer

    from finassist.domain import Quarantined
    from finassist.embed import default_model_path
    from finassist.feature.chunk import ChunkSpec, chunk_articles
    from finassist.feature.clean import clean_article
    from finassist.feature.validate import validate_record
    from test_fuzz_records import MAX_BYTES, raw_record

    tokenizer = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()
    spec = ChunkSpec(200, 40, 256)
    counts = {"records": 0, "valid": 0, "quarantined": 0, "escaped": 0}
    escapes: list[str] = []

    def escaped(e: Exception, n: int = 1) -> None:
        counts["escaped"] += n
        escapes.append(f"{type(e).__name__}: {e}"[:200])

    @settings(max_examples=batches, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(raw_record(), min_size=20, max_size=20))
    def run(batch):
        clean = []
        for raw in batch:
            counts["records"] += 1
            try:
                out = validate_record(raw, max_bytes=MAX_BYTES)
                if not isinstance(out, Quarantined):
                    out = clean_article(out, budget_s=60)
            except Exception as e:
                escaped(e)
                continue
            if isinstance(out, Quarantined):
                counts["quarantined"] += 1
            else:
                clean.append(out)
        try:
            chunk_articles(clean, tokenizer, spec, budget_s=60)
            counts["valid"] += len(clean)
        except Exception as e:
            escaped(e, len(clean))

    started = time.monotonic()
    run()
    return {**counts, "seconds": round(time.monotonic() - started, 1), "examples": escapes[:5]}


# --- the API under load and abuse ----------------------------------------------------------------------------------
def api_matrix(askers: int, ask_seconds: float) -> dict[str, Any]:
    import api_abuse

    from api_server import free_port, wait_ready

    key = "faults-benchmark-key"
    with tempfile.TemporaryDirectory(prefix="faults-api-") as tmp:
        home = Path(tmp)
        env = _env(home, FINASSIST_API_KEY=key)
        _cli_json(["ingest", "file", str(SAMPLE)], env)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_ready(url, timeout=300, alive=lambda: server.poll() is None)
            flood = api_abuse.ask_flood(url, key, clients=askers, seconds=ask_seconds, client_timeout_s=30,
                                        drain_wait_s=2)
            busy = api_abuse.metric(url, "finassist_requests_queued", key) + api_abuse.metric(
                url, "finassist_generations_in_flight", key)
            result = {
                "askers": askers,
                "seconds": ask_seconds,
                "statuses": flood["statuses"],
                "abandoned": int(busy),
                "headers": api_abuse.header_probes(url, server.pid),
                "slowloris": api_abuse.slowloris_probes(url, key),
                "body": api_abuse.body_probes(url, key),
                "exposure": api_abuse.exposure_probes(url),
            }
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="kill,resume,stream,fuzz,api")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--headlines", type=int, default=3000)
    ap.add_argument("--fuzz-batches", type=int, default=500, help="batches of 20 generated records")
    ap.add_argument("--askers", type=int, default=20)
    ap.add_argument("--ask-seconds", type=float, default=60)
    args = ap.parse_args()
    parts = args.only.split(",")
    result: dict[str, Any] = {"date": date.today().isoformat()}
    if "kill" in parts:
        print("kill -9 mid-ingest ...", file=sys.stderr, flush=True)
        result["kill"] = kill_matrix(args.kills, args.headlines)
    if "resume" in parts:
        print("resume granularity ...", file=sys.stderr, flush=True)
        result["resume"] = resume_matrix(args.headlines)
    if "stream" in parts:
        from stream_faults import run_stream_faults

        print("websocket drops ...", file=sys.stderr, flush=True)
        result["stream"] = run_stream_faults(drops=10)
    if "fuzz" in parts:
        print("hostile records ...", file=sys.stderr, flush=True)
        result["fuzz"] = fuzz_matrix(args.fuzz_batches)
    if "api" in parts:
        print("API load and abuse ...", file=sys.stderr, flush=True)
        result["api"] = api_matrix(args.askers, args.ask_seconds)
    result["totals"] = {
        "lost": sum(result.get(k, {}).get("lost", 0) for k in ("kill", "stream")),
        "duplicated": sum(result.get(k, {}).get("duplicated", 0) for k in ("kill", "stream")),
        "escaped": result.get("fuzz", {}).get("escaped", 0),
        "abandoned": result.get("api", {}).get("abandoned", 0),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
