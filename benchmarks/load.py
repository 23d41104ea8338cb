"""Many users at once: N clients asking /v1/ask without pause, on each engine, against the real API.

    python benchmarks/load.py [--clients 20] [--seconds 60] [--tokens 64] [--backends transformers,llamacpp]
                              [--single-seconds 30] [--prompt-versions v1,v2] [--json out.json]

Per backend, one run of the real app (create_app, uvicorn on 127.0.0.1, the API's default gate and queue: the
engine's slots, 4 waiting per slot) over data/sample_news.jsonl ingested by the real pipeline:
1. single stream: one client asks back to back for `--single-seconds`: its tokens/s is the baseline;
2. load: `--clients` clients ask back to back for `--seconds` (non-streamed /v1/ask, max_new_tokens `--tokens`,
   temperature 0, each client going through data/answers_qa.jsonl's 56 questions from its own offset, so that the
   engine's prompt cache rarely sees a question twice). A 503 is counted, the client waits its Retry-After (capped
   at 5 s) and asks again, as a well-behaved client would. Meanwhile a UI probe GETs / and
   /readyz every 0.5 s and reports their latency (the chat UI must stay responsive).
Reported: answered share of requests, 503s, other errors, latency p50/p95 of answered requests, aggregate completion
tokens/s over the window vs the single stream's, and the UI probe's p95. With `--prompt-versions`, each backend
runs once per prompt template (v1: whole chunks, v2: the sentences about the question; finassist.prompt), side by
side. Requests still running at the end count only if they finish within 30 s. The machine's load average is
printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SAMPLE = ROOT / "data" / "sample_news.jsonl"
# The answer benchmark's questions about data/sample_news.jsonl (56): few repeat within a run, so the engine's prompt
# cache does not make answers look cheaper than real users' varied questions would.
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "data" / "answers_qa.jsonl").open() if line.strip()]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def client_loop(url: str, stop: threading.Event, tokens: int, results: list, offset: int) -> None:
    import httpx

    i = offset * 3
    with httpx.Client(base_url=url, timeout=300) as http:
        while not stop.is_set():
            body = {"question": QUESTIONS[i % len(QUESTIONS)], "max_new_tokens": tokens, "temperature": 0}
            i += 1
            t0 = time.monotonic()
            try:
                r = http.post("/v1/ask", json=body)
            except httpx.HTTPError as exc:
                results.append({"status": f"error {type(exc).__name__}", "start": t0, "end": time.monotonic()})
                continue
            row = {"status": r.status_code, "start": t0, "end": time.monotonic()}
            if r.status_code == 200:
                row["tokens"] = r.json()["usage"]["completion_tokens"]
            results.append(row)
            if r.status_code == 503:
                stop.wait(min(5.0, float(r.headers.get("retry-after", "1"))))


def ui_probe(url: str, stop: threading.Event, latencies: list) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            for path in ("/", "/readyz"):
                t0 = time.monotonic()
                http.get(path)
                latencies.append(time.monotonic() - t0)
            stop.wait(0.5)


def run_clients(url: str, clients: int, seconds: float, tokens: int, probe: bool) -> dict:
    stop, results, ui = threading.Event(), [], []
    threads = [threading.Thread(target=client_loop, args=(url, stop, tokens, results, i)) for i in range(clients)]
    if probe:
        threads.append(threading.Thread(target=ui_probe, args=(url, stop, ui)))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    window = time.monotonic() - t0
    answered = [r for r in results if r["status"] == 200]
    tokens_made = sum(r["tokens"] for r in answered)
    return {
        "clients": clients,
        "seconds": round(window, 1),
        "requests": len(results),
        "answered": len(answered),
        "answered_share": round(len(answered) / len(results), 3) if results else None,
        "busy_503": sum(r["status"] == 503 for r in results),
        "other_errors": sorted({str(r["status"]) for r in results if r["status"] not in (200, 503)}),
        "latency_s_p50": pct([r["end"] - r["start"] for r in answered], 0.5),
        "latency_s_p95": pct([r["end"] - r["start"] for r in answered], 0.95),
        "completion_tokens": tokens_made,
        "aggregate_tok_s": round(tokens_made / window, 2),
        "ui_p95_s": pct(ui, 0.95) if probe else None,
        "ui_max_s": round(max(ui), 3) if ui else None,
    }


def bench_backend(backend: str, args, tmp: Path) -> dict:
    from finassist.config import Settings
    from finassist.feature.flow import job_key, run_flow
    from finassist.feature.sources.file import NewsFileSource
    from finassist.inference.api import create_app
    from finassist.store import close_stores

    from api_server import ApiServer

    settings = Settings(home=tmp / backend, tracing=False, llm_backend=backend, models_dir=args.models_dir,
                        llm_adapter="", champion_poll_s=0)
    run_flow(NewsFileSource([SAMPLE], batch_size=settings.batch_articles), settings,
             job_key("file", [str(SAMPLE)], settings))
    close_stores()
    with ApiServer(create_app(settings)) as server:
        log(f"{backend}: ready; gate {settings.answer_concurrency} + queue {settings.answer_queue}")
        run_clients(server.url, 1, 5, args.tokens, probe=False)  # warm-up
        single = run_clients(server.url, 1, args.single_seconds, args.tokens, probe=False)
        log(f"{backend}: single stream {single['aggregate_tok_s']} tok/s")
        load = run_clients(server.url, args.clients, args.seconds, args.tokens, probe=True)
        log(f"{backend}: {args.clients} clients: {load['answered_share']} answered, {load['aggregate_tok_s']} tok/s")
    close_stores()
    load["aggregate_vs_single"] = round(load["aggregate_tok_s"] / single["aggregate_tok_s"], 2) \
        if single["aggregate_tok_s"] else None
    return {"gate": settings.answer_concurrency, "queue": settings.answer_queue,
            "engine_threads": settings.engine_threads,
            "gguf_type": settings.llm_gguf_type if backend == "llamacpp" else None, "single": single, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--single-seconds", type=float, default=30)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--backends", default="transformers,llamacpp")
    ap.add_argument("--models-dir", type=Path, default=ROOT / ".cache" / "models")
    ap.add_argument("--prompt-versions", default="", help="e.g. v1,v2: each backend once per prompt template")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import finassist.prompt

    versions = [v for v in args.prompt_versions.split(",") if v] or [finassist.prompt.PROMPT_VERSION]
    load_start = os.getloadavg()
    result: dict = {"date": date.today().isoformat(), "cpus": os.cpu_count(), "clients": args.clients,
                    "seconds": args.seconds, "max_new_tokens": args.tokens, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="finassist-load-") as tmp:
        for backend in args.backends.split(","):
            for version in versions:
                finassist.prompt.get_template(version)  # unknown: a clear error
                finassist.prompt.PROMPT_VERSION = version  # what the base model's prompts are built with
                name = backend if len(versions) == 1 else f"{backend}:{version}"
                result["backends"][name] = bench_backend(backend, args, Path(tmp) / version) | {"prompt": version}
    result["loadavg"] = [[round(x, 2) for x in load_start], [round(x, 2) for x in os.getloadavg()]]
    text = json.dumps(result)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
