"""Inference pipeline: /v1/retrieve latency on a 100k-chunk store, /v1/ask streaming, and transformers vs llama.cpp.

    python benchmarks/serve.py [--chunks 100000] [--queries 300] [--asks 5] [--tokens 128] [--reps 3]
                               [--llama-python /tmp/llamavenv/bin/python] [--optimize] [--parts retrieve,ask,generate]

Three measurements in one process and run, so that their ratios compare like with like (hence one long file).

1. Retrieve. `--base-texts` real Benzinga headlines (+ summaries) are embedded with the real embedder; the store is
   filled with `--chunks` points whose vectors are those real vectors plus Gaussian noise (`--noise` per dimension,
   renormalised; the mean cosine to the source vector is reported), so the vector distribution is realistic
   without embedding 100k texts (~50 min here). Articles take their headline, summary and symbols from the file,
   created_at is spread over the last 90 days, and their chunk counts and chunk text lengths are drawn from what the
   real transforms (validate → clean → chunk) make of data/sample_news.jsonl; chunk text is the headline + real
   headline text as filler. Points go in through `VectorStore.write` (64 articles per call), as the pipeline writes.
   Then the real API (create_app, uvicorn on 127.0.0.1) answers `--queries` sequential GET /v1/retrieve (k=4) over
   one keep-alive httpx connection: held-out headlines and short ticker questions, every other one with a `symbols`
   filter. Per query: client wall time, the server's `took_ms`, and the in-process `retrieve_for_question` the route
   runs, with the same arguments (alternating which goes first; on one worker thread, as the API runs it), then the
   query embedding alone and the store query alone (the retriever's first fetch, in the configured retrieval mode:
   hybrid by default). 10 warm-up requests first. `--optimize` then builds the embedded shard's vector index
   (`VectorStore.optimize`, as `ingest file`/`backfill` do after a large backfill) and times all of it again.
2. Ask. data/sample_news.jsonl goes through the real feature pipeline (`run_flow`) into a second store; `--asks`
   POST /v1/ask with stream=true, temperature 0, max_new_tokens=`--tokens` (after one uncounted warm-up). TTFT is
   client-side, from sending the request to the first `token` event; the streamer emits whole words, so it
   includes the decode step(s) of the first word. Decode rate = (completion_tokens - 1) / (done - first token
   event), a little high by those first-word steps. Answers may stop early at end-of-sequence (finish_reason
   "stop"); the rate counts the tokens actually made.
3. Side by side, the same prompt: the chain's own retrieve and prompt steps build the /v1/ask prompt of the first
   question; its token ids (the transformers chat template) are fed to (a) the served TransformersLLM's model
   (fp32, `--threads` torch threads) via `generate` and (b) llama.cpp (llama-cpp-python, run by `--llama-python`
   as benchmarks/llama_cpp_gen.py) on the packaged Q4_1 GGUF with n_threads=`--threads`. Both decode greedily with
   the end-of-sequence ids masked, so both make exactly `--tokens` tokens. Prefill = time to the first generated
   token; decode rate = (tokens - 1) / (last - first token). Median of `--reps` runs after a warm-up run.
   Without llama_cpp in that interpreter, "llama_cpp" says why it was skipped.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata as md
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benzinga_headlines.jsonl.gz"
SAMPLE = ROOT / "data" / "sample_news.jsonl"
sys.path.insert(0, str(ROOT / "tests"))  # ApiServer: the real uvicorn in a thread, as the API tests use it

ASK_QUESTIONS = [
    "What did Voltrix do with its revenue guidance?",
    "Why did Brookward cut its dividend?",
    "What dividend did Kestrel Ridge declare?",
    "What did analysts say about Tellwave?",
    "How did Celquora's quarter go?",
]
RETRIEVE_QUESTIONS = [
    "What is the latest news on {s}?",
    "Why did {s} shares move?",
    "What did analysts say about {s}?",
    "Any earnings news for {s}?",
    "Did {s} announce a product launch?",
]


def log(msg: str) -> None:
    print(f"[serve-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)}


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


# --- 1. retrieve --------------------------------------------------------------------------------------------------
def sample_shapes(settings, embedder) -> tuple[list[int], list[int]]:
    """Chunks per article and chunk text lengths that the real transforms make of the sample news."""
    from finassist.domain import CleanArticle, NewsArticle, RawRecord
    from finassist.feature.chunk import ChunkSpec, chunk_articles
    from finassist.feature.clean import clean_article
    from finassist.feature.validate import validate_record

    arts = [validate_record(RawRecord("bench", line), settings.max_article_bytes) for line in SAMPLE.open("rb")]
    clean = [c for a in arts if isinstance(a, NewsArticle) for c in [clean_article(a)] if isinstance(c, CleanArticle)]
    spec = ChunkSpec(settings.chunk_tokens, settings.chunk_overlap, embedder.max_seq_length)
    chunked = chunk_articles(clean, embedder.tokenizer, spec)
    return [len(c.chunks) for c in chunked], [len(ch.text) for c in chunked for ch in c.chunks]


def fill_store(settings, embedder, base: list[dict], args) -> dict:
    from finassist.domain import Chunk, CleanArticle, EmbeddedArticle, NewsArticle
    from finassist.store import open_store

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    texts = [f"{r['headline']}\n\n{r['summary']}".strip() for r in base]
    vectors = embedder.encode(texts, batch_size=settings.embed_batch_size)
    embed_s = time.perf_counter() - t0
    log(f"embedded {len(texts)} real texts in {embed_s:.1f} s")
    counts, lengths = sample_shapes(settings, embedder)
    pool = " ".join(r["headline"] for r in base)
    now = datetime.now(UTC)
    store = open_store(settings)
    written = articles = 0
    cos_sum = 0.0
    t0 = time.perf_counter()
    while written < args.chunks:
        batch = []
        for _ in range(64):
            n = min(int(rng.choice(counts)), args.chunks - written)
            if n <= 0:
                break
            i = int(rng.integers(len(base)))
            rec = base[i]
            created = now - timedelta(seconds=float(rng.uniform(0, 90 * 86400)))
            art = NewsArticle(
                id=f"bench-{articles}",
                headline=rec["headline"],
                summary=rec["summary"],
                source="benzinga",
                url=f"https://news.example.com/{articles}",
                symbols=rec["symbols"],
                created_at=created,
            )
            vecs = vectors[i] + rng.normal(0.0, args.noise, size=(n, vectors.shape[1])).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            cos_sum += float((vecs @ vectors[i]).sum())
            chunks = []
            for c in range(n):
                need = max(0, int(rng.choice(lengths)) - len(rec["headline"]) - 2)
                off = int(rng.integers(max(1, len(pool) - need)))
                filler = (
                    (rec["summary"] + " " + pool[off : off + need]).strip()[:need] if c == 0 else pool[off : off + need]
                )
                chunks.append(Chunk(art.id, c, f"{rec['headline']}\n\n{filler}".strip()))
            clean = CleanArticle(art, art.headline, art.summary, "")
            batch.append(EmbeddedArticle(clean, tuple(chunks), tuple(map(tuple, vecs.tolist()))))
            written += n
            articles += 1
        store.write(batch)
        if articles % 3200 < 64:
            log(f"store: {written}/{args.chunks} points")
    store.flush()
    write_s = time.perf_counter() - t0
    return {
        "points": store.count(),
        "articles": store.count(articles=True),
        "base_texts_embedded": len(texts),
        "embed_texts_s": round(embed_s, 1),
        "noise_sigma": args.noise,
        "mean_cosine_to_source": round(cos_sum / written, 3),
        "chunks_per_article_mean": round(written / articles, 2),
        "write_s": round(write_s, 1),
        "write_points_per_s": round(written / write_s),
    }


def retrieve_queries(held_out: list[dict], n: int) -> list[tuple[str, list[str]]]:
    """Half held-out headlines, half short questions about one of their tickers; every other one filtered."""
    out = []
    for i, rec in enumerate(held_out[:n]):
        sym = rec["symbols"][0]
        text = rec["headline"] if (i // 2) % 2 == 0 else RETRIEVE_QUESTIONS[i % len(RETRIEVE_QUESTIONS)].format(s=sym)
        out.append((text, [sym] if i % 2 else []))
    return out


def bench_retrieve(args, llm, base: list[dict], held_out: list[dict], tmp: Path) -> dict:
    import httpx

    from finassist.config import Settings
    from finassist.embed import get_embedder
    from finassist.inference.api import Services, create_app
    from finassist.retrieval import retrieve_for_question
    from finassist.store import SearchFilter, open_store, search_mode

    from api_server import ApiServer

    settings = Settings(home=tmp / "retrieve", tracing=False, models_dir=args.models_dir)
    embedder = get_embedder(settings.embedding_model, settings.embedding_device)
    result = fill_store(settings, embedder, base, args)
    log(f"store: {result['points']} points, {result['articles']} articles in {result['write_s']} s")
    services = Services(settings, llm=llm)
    queries = retrieve_queries(held_out, args.queries + 10)
    k = 4
    series: dict[str, list[float]] = {name: [] for name in ("http", "took", "direct", "embed", "search")}
    by_filter: dict[str, dict[str, list[float]]] = {name: {"http": [], "direct": []} for name in ("none", "symbols")}
    store = open_store(settings)
    # In-process calls run on one worker thread, as the API runs them (run_in_threadpool); timed inside it.
    worker = ThreadPoolExecutor(1, thread_name_prefix="bench-retrieve")

    def _inproc(q: str, syms: list[str]) -> float:
        """What the route runs (its question → filters step included), without HTTP."""
        chain = services.chain
        t0 = time.perf_counter()
        retrieve_for_question(
            chain.retriever, q, k, settings.recency_weight, settings.recency_half_life_hours, chain.aliases,
            symbols=syms or None, filing_boost=settings.filing_boost,
        )
        return (time.perf_counter() - t0) * 1000

    def _parts(q: str, syms: list[str]) -> tuple[float, float]:
        """The query embedding alone, then the store query alone (the retriever's first fetch: 5 x 3k points)."""
        t0 = time.perf_counter()
        vector = embedder.encode([q])[0].tolist()
        t1 = time.perf_counter()
        store.search(vector, k * 3 * 5, SearchFilter(tuple(syms)), text=q, how=search_mode(settings))
        return (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000

    def inproc(q: str, syms: list[str]) -> float:
        return worker.submit(_inproc, q, syms).result()

    def parts(q: str, syms: list[str]) -> tuple[float, float]:
        return worker.submit(_parts, q, syms).result()

    shard = getattr(store, "_shard", None)  # the embedded edge shard: is the vector index built?
    optimized: dict | None = None
    with ApiServer(create_app(settings, services)) as server, httpx.Client(base_url=server.url, timeout=60) as client:

        def http(q: str, syms: list[str]) -> tuple[float, float]:
            params = {"q": q, "k": k, **({"symbols": ",".join(syms)} if syms else {})}
            t0 = time.perf_counter()
            r = client.get("/v1/retrieve", params=params)
            dt = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            return dt, r.json()["took_ms"]

        for q, syms in queries[:10]:  # warm-up, not counted
            http(q, syms)
            inproc(q, syms)
        log(f"retrieve: {args.queries} queries")
        for i, (q, syms) in enumerate(queries[10:]):
            if i % 2:  # alternate which goes first, so neither always finds the caches warm
                d = inproc(q, syms)
                w, t = http(q, syms)
            else:
                w, t = http(q, syms)
                d = inproc(q, syms)
            e, f = parts(q, syms)
            for name, v in zip(series, (w, t, d, e, f), strict=True):
                series[name].append(v)
            by_filter["symbols" if syms else "none"]["http"].append(w)
            by_filter["symbols" if syms else "none"]["direct"].append(d)
        before = shard.info() if shard is not None else None
        if args.optimize and shard is not None:
            # What `ingest file`/`backfill` do at the end of a large backfill: build the shard's vector index.
            t0 = time.perf_counter()
            store.optimize()
            optimize_s = time.perf_counter() - t0
            info = shard.info()
            log(f"optimize: {optimize_s:.1f} s, {info.indexed_vectors_count} indexed vectors")
            after: dict[str, list[float]] = {name: [] for name in ("http", "took", "direct", "search")}
            for i, (q, syms) in enumerate(queries[10:]):
                if i % 2:
                    d = inproc(q, syms)
                    w, t = http(q, syms)
                else:
                    w, t = http(q, syms)
                    d = inproc(q, syms)
                for name, v in zip(after, (w, t, d, parts(q, syms)[1]), strict=True):
                    after[name].append(v)
            optimized = {
                "optimize_s": round(optimize_s, 1),
                "store_segments": info.segments_count,
                "store_indexed_vectors": info.indexed_vectors_count,
                "http_wall_ms": pct(after["http"]),
                "server_took_ms": pct(after["took"]),
                "direct_retrieve_recent_ms": pct(after["direct"]),
                "store_search_ms": pct(after["search"]),
            }
    info = before
    result |= {
        "store_segments": getattr(info, "segments_count", None),
        "store_indexed_vectors": getattr(info, "indexed_vectors_count", None),
        "retrieval_mode": f"{settings.retrieval_mode} ({settings.retrieval_fusion})",
        "queries": len(series["http"]),
        "k": k,
        "with_symbols_filter": len(by_filter["symbols"]["http"]),
        "http_wall_ms": pct(series["http"]),
        "server_took_ms": pct(series["took"]),
        "direct_retrieve_recent_ms": pct(series["direct"]),
        "query_embed_ms": pct(series["embed"]),
        "store_search_ms": pct(series["search"]),
        "p50_ms_by_filter": {
            name: {kind: round(statistics.median(v), 2) for kind, v in g.items()} for name, g in by_filter.items()
        },
        "ratio_http_to_direct_p50": round(statistics.median(series["http"]) / statistics.median(series["direct"]), 2),
        "ratio_http_to_direct_p99": round(
            float(np.percentile(series["http"], 99) / np.percentile(series["direct"], 99)), 2
        ),
    }
    if optimized is not None:
        result["after_optimize"] = optimized
    worker.shutdown()
    return result


# --- 2. ask -------------------------------------------------------------------------------------------------------
def ask_stream(client, question: str, tokens: int) -> dict:
    body = {"question": question, "stream": True, "max_new_tokens": tokens, "temperature": 0}
    t0 = time.perf_counter()
    first = done_at = None
    done: dict = {}
    event = ""
    with client.stream("POST", "/v1/ask", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if event == "token" and first is None:
                    first = time.perf_counter()
                elif event == "done":
                    done_at, done = time.perf_counter(), json.loads(line[5:])
                elif event == "error":
                    raise RuntimeError(f"/v1/ask failed: {line}")
    assert first is not None and done_at is not None, "no token or no done event"
    n = done["usage"]["completion_tokens"]
    return {
        "ttft_ms": (first - t0) * 1000,
        "total_s": done_at - t0,
        "prompt_tokens": done["usage"]["prompt_tokens"],
        "completion_tokens": n,
        "decode_tok_s": (n - 1) / (done_at - first) if n > 1 and done_at > first else float("nan"),
        "finish_reason": done["finish_reason"],
    }


def bench_ask(args, llm, tmp: Path):
    import httpx

    from finassist.config import Settings
    from finassist.feature.flow import job_key, run_flow
    from finassist.feature.sources.file import NewsFileSource
    from finassist.inference.api import Services, create_app

    from api_server import ApiServer

    settings = Settings(home=tmp / "ask", tracing=False, models_dir=args.models_dir)
    t0 = time.perf_counter()
    stats = run_flow(
        NewsFileSource([SAMPLE], batch_size=settings.batch_articles), settings, job_key("file", [str(SAMPLE)], settings)
    )
    ingest_s = time.perf_counter() - t0
    log(f"ask: ingested {stats.articles_ok} sample articles ({stats.chunks} chunks) in {ingest_s:.1f} s")
    services = Services(settings, llm=llm)
    runs = []
    with ApiServer(create_app(settings, services)) as server, httpx.Client(base_url=server.url, timeout=600) as client:
        ask_stream(client, "What is new at Havenrock?", 4)  # warm-up, not counted
        for i in range(args.asks):
            q = ASK_QUESTIONS[i % len(ASK_QUESTIONS)]
            runs.append(ask_stream(client, q, args.tokens))
            log(
                f"ask {i + 1}/{args.asks}: ttft {runs[-1]['ttft_ms']:.0f} ms, {runs[-1]['completion_tokens']} tokens, "
                f"{runs[-1]['decode_tok_s']:.1f} tok/s"
            )
    med = lambda key: round(statistics.median(r[key] for r in runs), 2)  # noqa: E731
    result = {
        "sample_articles": stats.articles_ok,
        "sample_chunks": stats.chunks,
        "ingest_s": round(ingest_s, 1),
        "asks": len(runs),
        "max_new_tokens": args.tokens,
        "ttft_ms_median": med("ttft_ms"),
        "decode_tok_s_median": med("decode_tok_s"),
        "total_s_median": med("total_s"),
        "prompt_tokens_median": med("prompt_tokens"),
        "completion_tokens_median": med("completion_tokens"),
        "finish_reasons": sorted({r["finish_reason"] for r in runs}),
        "runs": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
    }
    return result, services


# --- 3. transformers vs llama.cpp ---------------------------------------------------------------------------------
def transformers_runs(llm, ids, tokens: int, banned: list[int], reps: int) -> tuple[dict, list[int]]:
    import torch
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        """Time stamps of generated tokens (generate hands the prompt over first: not a token)."""

        def __init__(self) -> None:
            self.stamps: list[float] = []
            self.prompt_seen = False

        def put(self, value) -> None:
            if self.prompt_seen:
                self.stamps.append(time.perf_counter())
            self.prompt_seen = True

        def end(self) -> None:
            pass

    def generate(n: int, clock: Clock, out: dict) -> None:
        with torch.inference_mode():
            out["ids"] = llm.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                suppress_tokens=banned,
                streamer=clock,
                pad_token_id=llm.tokenizer.eos_token_id,
            )

    def run(n: int) -> tuple[float, float, list[int]]:
        # In a worker thread, as TransformersLLM.stream runs it. On the busy 2-core VM, generate called from the main
        # thread was 2-4x slower (libgomp's OpenMP threads spin-waiting; OMP_WAIT_POLICY=PASSIVE made them equal).
        clock, out = Clock(), {}
        t0 = time.perf_counter()
        worker = threading.Thread(target=generate, args=(n, clock, out), name="generate")
        worker.start()
        worker.join()
        s = clock.stamps
        assert len(s) == n, f"transformers made {len(s)} tokens, not {n}"
        return s[0] - t0, (n - 1) / (s[-1] - s[0]) if n > 1 else 0.0, out["ids"][0, ids.shape[-1] :].tolist()

    run(8)  # warm-up
    runs = [run(tokens) for _ in range(reps)]
    return {
        "prefill_ms": [round(r[0] * 1000, 1) for r in runs],
        "decode_tok_s": [round(r[1], 2) for r in runs],
        "prefill_ms_median": round(statistics.median(r[0] for r in runs) * 1000, 1),
        "decode_tok_s_median": round(statistics.median(r[1] for r in runs), 2),
    }, runs[-1][2]


def llama_runs(args, ids: list[int], messages, banned: list[int]) -> dict:
    py = args.llama_python
    if not Path(py).exists():
        return {"skipped": f"{py} does not exist"}
    probe = subprocess.run([py, "-c", "import llama_cpp"], capture_output=True, text=True)
    if probe.returncode != 0:
        return {"skipped": f"{py} cannot import llama_cpp: {(probe.stderr.strip().splitlines() or ['?'])[-1]}"}
    from finassist.llm.local import packaged_gguf

    req = {
        "model_path": str(packaged_gguf()),
        "prompt_ids": ids,
        "messages": messages,
        "tokens": args.tokens,
        "banned_ids": banned,
        "n_threads": args.threads,
        "n_ctx": len(ids) + args.tokens + 64,
        "reps": args.reps,
    }
    proc = subprocess.run(
        [py, str(Path(__file__).with_name("llama_cpp_gen.py"))],
        input=json.dumps(req),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        return {"failed": proc.stderr.strip()[-2000:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "Traceback" in proc.stderr:  # errors inside llama.cpp callbacks are only printed, never raised
        result["stderr_tracebacks"] = proc.stderr.count("Traceback")
    return result


def bench_generate(args, services) -> dict:
    from finassist.inference.chain import AskInput, RunRecord

    chain, llm = services.chain, services.llm
    request = AskInput(question=ASK_QUESTIONS[0], max_new_tokens=args.tokens, temperature=0)
    state = {"request": request, "record": RunRecord(request)}
    prompt = chain._prompt({**state, "hits": chain._retrieve(state)})  # the chain's own steps: the /v1/ask prompt
    ids = llm._input_ids(prompt.messages)
    eos = llm.model.generation_config.eos_token_id
    banned = sorted({llm.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None})
    log(f"generate: prompt of {ids.shape[-1]} tokens, {args.tokens} tokens x {args.reps} runs (transformers)")
    hf, hf_ids = transformers_runs(llm, ids, args.tokens, banned, args.reps)
    log(f"generate: transformers {hf['decode_tok_s_median']} tok/s; llama.cpp via {args.llama_python}")
    lc = llama_runs(args, ids[0].tolist(), prompt.messages, banned)
    result = {
        "question": request.question,
        "prompt_tokens": int(ids.shape[-1]),
        "tokens": args.tokens,
        "reps": args.reps,
        "threads": args.threads,
        "banned_eos_ids": banned,
        "transformers": {"weights": "fp32 (dequantised from the Q4_1 GGUF)", **hf},
        "llama_cpp": {"weights": "Q4_1 GGUF"} | {k: v for k, v in lc.items() if k != "generated_ids"},
    }
    if "decode_tok_s_median" in lc:
        same = 0
        for a, b in zip(hf_ids, lc["generated_ids"], strict=False):
            if a != b:
                break
            same += 1
        result["ratio_decode_llama_to_transformers"] = round(lc["decode_tok_s_median"] / hf["decode_tok_s_median"], 2)
        result["ratio_prefill_transformers_to_llama"] = round(hf["prefill_ms_median"] / lc["prefill_ms_median"], 2)
        result["same_greedy_tokens_before_divergence"] = same

        def total_s(side: dict) -> float:  # prompt + all tokens, from the medians
            return side["prefill_ms_median"] / 1000 + (args.tokens - 1) / side["decode_tok_s_median"]

        result["ratio_total_transformers_to_llama"] = round(total_s(hf) / total_s(lc), 2)
    return result


# --- main ---------------------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [r for r in map(json.loads, f) if r.get("symbols") and r.get("headline")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000, help="points in the retrieval store")
    ap.add_argument("--queries", type=int, default=300, help="/v1/retrieve requests (after 10 warm-up)")
    ap.add_argument("--asks", type=int, default=5, help="streamed /v1/ask requests (after 1 warm-up)")
    ap.add_argument("--tokens", type=int, default=128, help="max_new_tokens of /v1/ask; exact tokens in part 3")
    ap.add_argument("--reps", type=int, default=3, help="runs per engine in part 3 (median)")
    ap.add_argument("--base-texts", type=int, default=2_500, help="real texts embedded for the store's vectors")
    ap.add_argument("--noise", type=float, default=0.025, help="Gaussian noise per dimension on the real vectors")
    ap.add_argument("--optimize", action="store_true", help="also: build the store's index, query again")
    ap.add_argument("--parts", default="retrieve,ask,generate", help="which measurements (comma-separated)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads and llama.cpp n_threads")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--models-dir", type=Path, default=ROOT / ".cache" / "models", help="converted base models")
    ap.add_argument("--llama-python", default="/tmp/llamavenv/bin/python", help="interpreter with llama-cpp-python")
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"benchmark data not found: {args.data} (it lives in ../shared/data)")

    import torch

    torch.set_num_threads(args.threads)
    from finassist.config import Settings
    from finassist.llm import open_llm
    from finassist.store import close_stores

    started = time.perf_counter()
    load_start = os.getloadavg()
    records = read_records(args.data)
    order = np.random.default_rng(42).permutation(len(records))
    base = [records[i] for i in order[: args.base_texts]]
    held_out = [records[i] for i in order[args.base_texts : args.base_texts + args.queries + 10]]
    log(f"{len(records)} headlines read; loading the LLM")
    with tempfile.TemporaryDirectory(prefix="finassist-serve-bench-") as tmp:
        llm = open_llm(Settings(home=Path(tmp) / "llm", models_dir=args.models_dir))
        parts = set(args.parts.split(","))
        retrieve = bench_retrieve(args, llm, base, held_out, Path(tmp)) if "retrieve" in parts else None
        ask, services = bench_ask(args, llm, Path(tmp)) if parts & {"ask", "generate"} else (None, None)
        generate = bench_generate(args, services) if "generate" in parts else {"llama_cpp": {}}
        close_stores()
    result = {
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "transformers": version("transformers"),
            "qdrant_edge": version("qdrant-edge-py"),
            "fastapi": version("fastapi"),
            "uvicorn": version("uvicorn"),
            "llama_cpp": generate["llama_cpp"].get("llama_cpp_version"),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "seconds": round(time.perf_counter() - started, 1),
        "retrieve": retrieve,
        "ask_stream": ask,
        "generate": generate,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
