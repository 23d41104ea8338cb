"""How much do llama.cpp's parallel slots raise total tokens/s on this machine? The engine's ceiling under load.

    python benchmarks/batch_decode.py [--concurrency 1,2,4] [--prompt-words 20,400] [--tokens 64] [--threads 2]
                                      [--json out.json]

The served engine (finassist's LlamaCppLLM, the default GGUF and settings) answers `2 × c` requests with `c` at a
time, for each concurrency `c`, each request making `--tokens` tokens (`engine` ignores the end of sequence, `port`
counts what it made) from a prompt of `--prompt-words` filler words whose first line is unique, so llama.cpp's prompt
cache never helps.
Two paths per setting, in one run:
- `engine`: xllamacpp's completion call without streaming (no Python work per token: llama.cpp's own batching);
- `port`: `LLM.stream`, what the chain runs (a Python callback and a queue per token, the cancel/deadline checks).
Reported per row: total completion tokens/s over the wall time and its ratio to the same path at concurrency 1.
A short prompt shows the decode ceiling; a RAG-sized one what a /v1/ask prompt's prefill leaves of it (prefill is
already a batch: parallel slots cannot make it cheaper). Compare the rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from finassist.config import Settings
    from finassist.llm import open_llm
    from finassist.llm.base import Generation, GenerationParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--prompt-words", default="20,400", help="filler words per prompt, one row set per value")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, help="FINASSIST_LLM_THREADS (default: the configured one)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    extra = {"llm_threads": args.threads} if args.threads else {}
    settings = Settings(llm_adapter="", tracing=False, llm_backend="llamacpp", **extra)
    llm = open_llm(settings)
    ids = count()

    def messages(words: int) -> list[dict[str, str]]:
        filler = " ".join(f"figure{i % 97}" for i in range(words))
        return [{"role": "user", "content": f"Request {next(ids)} at {time.time_ns()}.\n{filler}\nWrite a story."}]

    def engine(words: int) -> tuple[int, int]:
        prompt = llm._input_ids(messages(words))
        out = llm._server.handle_completions({"prompt": prompt, "n_predict": args.tokens, "stream": False,
                                              "temperature": 0, "top_k": 0, "ignore_eos": True})
        return out["usage"]["completion_tokens"], len(prompt)

    def port(words: int) -> tuple[int, int]:
        params = GenerationParams(max_new_tokens=args.tokens, temperature=0.0)  # may stop early: counted
        done = next(item for item in llm.stream(messages(words), params) if isinstance(item, Generation))
        return done.completion_tokens, done.prompt_tokens

    rows = []
    try:
        engine(20)  # warm-up: first-call costs
        for words in (int(w) for w in args.prompt_words.split(",")):
            for name, call in (("engine", engine), ("port", port)):
                base = None
                for c in (int(x) for x in args.concurrency.split(",")):
                    started = time.monotonic()
                    with ThreadPoolExecutor(c) as pool:
                        made = list(pool.map(call, [words] * (2 * c)))
                    wall = time.monotonic() - started
                    rate = sum(m[0] for m in made) / wall
                    base = base or rate
                    row = {"path": name, "prompt_tokens": made[0][1], "concurrency": c, "requests": len(made),
                           "wall_s": round(wall, 2), "tok_s": round(rate, 1), "vs_1": round(rate / base, 2)}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        llm.close()
    result = {"date": date.today().isoformat(), "cpus": os.cpu_count(), "threads": settings.engine_threads,
              "slots": settings.answer_concurrency, "gguf_type": settings.llm_gguf_type, "tokens": args.tokens,
              "loadavg": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print("| path | prompt tokens | concurrent | tok/s | vs 1 |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['path']} | {r['prompt_tokens']} | {r['concurrency']} | {r['tok_s']} | {r['vs_1']} |")


if __name__ == "__main__":
    main()
