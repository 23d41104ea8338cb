"""llama.cpp side of benchmarks/serve.py: greedy generation of exactly N tokens from given prompt token ids.

    /tmp/llamavenv/bin/python benchmarks/llama_cpp_gen.py < request.json

Runs in the interpreter that has llama-cpp-python (kept out of the project's venv: a ~15-minute compile) and needs
nothing else from the project. The request (JSON on stdin): `model_path`, `prompt_ids` (the prompt as the
transformers tokenizer renders it, so both engines read the same tokens), `messages` (to check that the GGUF's own
chat template renders the same ids), `tokens`, `banned_ids` (end-of-sequence ids, masked so that every run makes
exactly `tokens` tokens), `n_threads`, `n_ctx`, `reps`. Prints one JSON object: per-run prefill (time to the first
generated token) and decode rate, and the generated ids of the last run.
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def main() -> None:
    req = json.load(sys.stdin)
    import llama_cpp
    import numpy as np
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(
        model_path=req["model_path"],
        n_ctx=req["n_ctx"],
        n_threads=req["n_threads"],
        n_threads_batch=req["n_threads"],
        seed=0,
        verbose=False,
    )
    load_s = time.perf_counter() - started
    prompt = [int(t) for t in req["prompt_ids"]]
    banned = np.array(req["banned_ids"], dtype=np.int64)

    # The same end-of-sequence ids the transformers side suppresses. It must go in a list: llama-cpp-python iterates
    # it inside a ctypes callback, so a bare function fails on every token, silently (a traceback on stderr).
    def ban_eos(_ids, scores):
        scores[banned] = -np.inf
        return scores

    template = {}
    try:  # does the GGUF's own chat template render the same prompt as the transformers tokenizer?
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = llm.metadata
        bos = llm.detokenize([llm.token_bos()], special=True).decode()
        eos = llm.detokenize([llm.token_eos()], special=True).decode()
        fmt = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos)
        text = fmt(messages=req["messages"]).prompt
        own = llm.tokenize(text.encode(), add_bos=False, special=True)
        template = {"gguf_template_prompt_tokens": len(own), "gguf_template_same_ids": own == prompt}
        if own != prompt:  # where llama.cpp's tokenizer splits the same text differently
            at = next(
                (i for i, (a, b) in enumerate(zip(own, prompt, strict=False)) if a != b), min(len(own), len(prompt))
            )
            piece = lambda ids: [llm.detokenize([t], special=True).decode(errors="replace") for t in ids]  # noqa: E731
            template["gguf_template_first_diff"] = {
                "index": at,
                "gguf": piece(own[at : at + 4]),
                "transformers": piece(prompt[at : at + 4]),
            }
    except Exception as exc:  # a check, not the measurement
        template = {"gguf_template_check": f"{type(exc).__name__}: {exc}"}

    def run(n: int) -> tuple[float, float, list[int]]:
        llm.reset()  # no prefix reuse from the previous run: every run pays the full prefill
        ids: list[int] = []
        stamps: list[float] = []
        t0 = time.perf_counter()
        for tok in llm.generate(
            prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, logits_processor=[ban_eos]
        ):
            stamps.append(time.perf_counter())
            ids.append(int(tok))
            if len(ids) >= n:
                break
        prefill = stamps[0] - t0
        decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else 0.0
        return prefill, decode, ids

    run(8)  # warm-up
    runs = [run(req["tokens"]) for _ in range(req["reps"])]
    print(
        json.dumps(
            {
                "llama_cpp_version": llama_cpp.__version__,
                "load_s": round(load_s, 2),
                "prompt_tokens": len(prompt),
                "prefill_ms": [round(r[0] * 1000, 1) for r in runs],
                "decode_tok_s": [round(r[1], 2) for r in runs],
                "prefill_ms_median": round(statistics.median(r[0] for r in runs) * 1000, 1),
                "decode_tok_s_median": round(statistics.median(r[1] for r in runs), 2),
                "generated_ids": runs[-1][2],
                "banned_id_generated": any(t in set(req["banned_ids"]) for r in runs for t in r[2]),
                **template,
            }
        )
    )


if __name__ == "__main__":
    main()
