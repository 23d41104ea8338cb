"""What llama.cpp's prompt processing (prefill) is bound by: one ~1,240-token RAG prompt (the v1 template over
synthetic news, as benchmarks/engines.py builds it) through xllamacpp's server API under configuration variants,
timed by llama.cpp's own `timings` (prompt_ms, prompt tokens/s, decode tokens/s). Best of two runs per variant after a
short warm-up, prompt cache off.

    .venv/bin/python benchmarks/llama_prefill.py [--gguf FILE] [--requant Q8_0,Q4_0] [--variants JSON]

Each variant is a JSON object of overrides: threads, batch_threads, parallel (slots), kv_unified, n_ctx, n_ubatch,
n_batch, flash_attn_type (-1 auto, 0 off, 1 on), progress (return_progress), n_predict.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT / "benchmarks"))

DEFAULT_VARIANTS = [
    {}, {"flash_attn_type": 0}, {"flash_attn_type": 1}, {"parallel": 1, "kv_unified": False}, {"n_ctx": 2048},
    {"progress": False}, {"n_ubatch": 128}, {"n_ubatch": 2048}, {"threads": 2, "n_predict": 64},
    {"threads": 1, "batch_threads": 2, "n_predict": 64},
]


def time_variant(gguf: Path, ids: list[int], v: dict) -> dict:
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(gguf)
    p.n_ctx, p.n_parallel, p.kv_unified = v.get("n_ctx", 8192), v.get("parallel", 4), v.get("kv_unified", True)
    threads = v.get("threads", 1)
    p.cpuparams.n_threads, p.cpuparams_batch.n_threads = threads, v.get("batch_threads", threads)
    p.cache_ram_mib, p.verbosity, p.api_keys = 256, 0, [secrets.token_hex(8)]
    for key in ("n_batch", "n_ubatch", "flash_attn_type"):
        if key in v:
            setattr(p, key, v[key])
    server = xllamacpp.Server(p)

    def run(prompt: list[int], n: int) -> tuple[float, dict]:
        final: dict = {}

        def on_chunk(chunk: dict) -> bool:
            nonlocal final
            if chunk.get("choices", [{}])[0].get("finish_reason"):
                final = chunk
            return False

        t0 = time.monotonic()
        server.handle_completions({"prompt": prompt, "n_predict": n, "stream": True, "cache_prompt": False,
                                   "return_progress": v.get("progress", True), "temperature": 0}, on_chunk)
        return time.monotonic() - t0, final.get("timings", {})

    run(ids[:64], 1)
    wall, timings = min((run(ids, v.get("n_predict", 1)) for _ in range(2)), key=lambda r: r[0])
    return {"variant": v, "wall_s": round(wall, 2), "prompt_ms": round(timings.get("prompt_ms", 0)),
            "prefill_tok_s": round(timings.get("prompt_per_second", 0)),
            "decode_tok_s": round(timings.get("predicted_per_second", 0), 1) if v.get("n_predict", 1) > 1 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=None, help="default: the packaged SmolLM2 Q4_1")
    ap.add_argument("--requant", default="", help="also these requantisations of its Q4_1 tensors (Q8_0,Q4_0)")
    ap.add_argument("--variants", default=None, help="JSON list of variants (default: the set in this file)")
    args = ap.parse_args()
    import xllamacpp
    from transformers import AutoTokenizer

    from engines import rag_messages
    from finassist.config import Settings
    from finassist.llm.llamacpp import requantised
    from finassist.llm.local import PACKAGED_MODEL, packaged_gguf

    gguf = args.gguf or packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(Settings().models_path / PACKAGED_MODEL))
    ids = list(tokenizer.apply_chat_template(rag_messages(1250, tokenizer), add_generation_prompt=True,
                                             tokenize=True, return_dict=False))
    variants = json.loads(args.variants) if args.variants else DEFAULT_VARIANTS
    report = {"date": time.strftime("%Y-%m-%d"), "prompt_tokens": len(ids), "system": xllamacpp.get_system_info(),
              "loadavg_start": os.getloadavg(), "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"packaged": gguf} | {q: requantised(gguf, q, Path(tmp) / f"{q}.gguf")
                                      for q in filter(None, args.requant.split(","))}
        for label, path in files.items():
            report["files"][label] = []
            for v in variants if label == "packaged" else [{}, {"threads": 2, "n_predict": 64}]:
                row = time_variant(path, ids, v)
                report["files"][label].append(row)
                print(label, json.dumps(row), file=sys.stderr, flush=True)
    report["loadavg_end"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
