"""In-process LLM engines on the packaged SmolLM2-135M GGUF, one RAG prompt (~1,200 tokens, the v1 template), greedy:
transformers fp32 (the training model), OpenVINO GenAI (ContinuousBatchingPipeline), llama.cpp (xllamacpp) on the
packaged Q4_1 and on requantisations. Per engine: load s, prefill s (time to the first token), decode tokens/s,
whether the first 16 greedy tokens equal transformers', whether a peft LoRA is applied and matches transformers +
peft, how fast a cancelled request lets go, and aggregate decode tokens/s with 2 and 4 requests in flight.

    .venv/bin/pip install openvino-genai==2026.4.1.0   # only for the comparison; not a dependency
    .venv/bin/python benchmarks/engines.py [--threads 2] [--new-tokens 64] [--engines transformers,openvino,llamacpp]
        [--requant Q8_0,Q4_0] [--json out.json]

The machine's load average is printed with the numbers: on a shared 2-core box, timings move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FINASSIST_MODELS_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "models"))

from finassist.config import Settings
from finassist.llm import Generation, GenerationParams
from finassist.llm.local import PACKAGED_MODEL, TransformersLLM, packaged_gguf, packaged_model_dir
from finassist.prompt import build_messages_v1

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from loras import random_lora

PARAGRAPH = (
    "{company} said revenue for the quarter rose {pct} percent to ${rev} billion, ahead of analyst estimates, as "
    "demand for its cloud and services business offset weaker hardware sales. The board approved a dividend of "
    "${div} per share and a new ${buy} billion share buyback. Chief financial officer Dana Reyes told analysts that "
    "operating margin widened to {margin} percent and that the company expects full-year capital spending of about "
    "${capex} billion, with most of it going to data centers. Shares rose {move} percent in extended trading. "
)


def rag_messages(target_tokens: int, tokenizer) -> list[dict[str, str]]:
    """The serving template over synthetic news until the prompt is about `target_tokens` long."""
    hits, i = [], 0
    while True:
        text = " ".join(PARAGRAPH.format(company=f"Company {i}", pct=4 + i, rev=20 + i, div="0.2" + str(i % 10),
                                         buy=5 + i, margin=30 + i, capex=10 + i, move=i % 7 + 1) for _ in range(2))
        hits.append(SimpleNamespace(headline=f"Company {i} beats estimates", text=text, symbols=[f"C{i}"],
                                    created_at=datetime(2026, 11, 20 + i % 8, tzinfo=UTC)))
        messages = build_messages_v1("What dividend did Company 1 approve, and how did its shares move?", hits)
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        if len(ids) >= target_tokens - 150:
            return messages
        i += 1


def prefix_agreement(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def timed_stream(stream) -> dict:
    """Time to first piece and decode rate of one LLM-port stream."""
    started = time.monotonic()
    first = None
    final: Generation | None = None
    for item in stream:
        if isinstance(item, Generation):
            final = item
        elif first is None:
            first = time.monotonic() - started
    total = time.monotonic() - started
    assert final is not None and first is not None
    return {"prefill_s": round(first, 2), "decode_tok_s": round((final.completion_tokens - 1) / (total - first), 1),
            "completion_tokens": final.completion_tokens, "final": final}


def cancel_latency(llm, messages) -> float:
    """Seconds from closing a stream (client gone) until the engine is free for a 1-token request."""
    stream = llm.stream(messages, GenerationParams(max_new_tokens=400))
    next(stream)
    started = time.monotonic()
    stream.close()
    llm.generate([{"role": "user", "content": "Hi"}], GenerationParams(max_new_tokens=1))
    return round(time.monotonic() - started, 2)


def concurrent(llm, messages, n: int, new_tokens: int) -> dict:
    """n streams at once: aggregate decode tokens/s and how often consecutive pieces switch streams."""
    order: list[int] = []
    counts = [0] * n
    lock = threading.Lock()

    def run(i: int) -> None:
        for item in llm.stream(messages, GenerationParams(max_new_tokens=new_tokens)):
            if isinstance(item, Generation):
                counts[i] = item.completion_tokens
            else:
                with lock:
                    order.append(i)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    switches = sum(1 for a, b in zip(order, order[1:], strict=False) if a != b)
    return {"streams": n, "seconds": round(seconds, 1), "aggregate_tok_s": round(sum(counts) / seconds, 1),
            "switches": switches}


# --- engines ---------------------------------------------------------------------------------------------------------


def bench_transformers(args, messages, lora: Path) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    started = time.monotonic()
    llm = TransformersLLM(models_dir=Settings().models_path, device="cpu")
    out = {"engine": "transformers fp32", "load_s": round(time.monotonic() - started, 1)}
    run = timed_stream(llm.stream(messages, GenerationParams(max_new_tokens=args.new_tokens)))
    out |= {k: v for k, v in run.items() if k != "final"}
    out["reference_ids"] = greedy_ids(llm, messages, 16)
    adapted = TransformersLLM(adapter=lora, models_dir=Settings().models_path, device="cpu")
    out["reference_lora_ids"] = greedy_ids(adapted, messages, 16)
    out["cancel_s"] = cancel_latency(llm, messages)
    out["concurrent"] = [concurrent(llm, messages, 2, args.new_tokens // 2)]  # serialised by its lock
    return out


def greedy_ids(llm: TransformersLLM, messages, n: int) -> list[int]:
    import torch

    ids = llm._input_ids(messages)
    with torch.inference_mode():
        out = llm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                 do_sample=False, pad_token_id=llm.tokenizer.eos_token_id)
    return out[0, ids.shape[-1]:].tolist()


def bench_openvino(args, messages, lora: Path, ids: list[int], ref: dict) -> dict:
    import numpy as np
    import openvino as ov
    import openvino_genai as og
    from safetensors.numpy import load_file, save_file

    def pipeline(adapter=None):
        config = og.SchedulerConfig()
        config.cache_size = 1  # GB of KV cache
        config.max_num_seqs = 4
        props = {"INFERENCE_NUM_THREADS": args.threads}
        if adapter is not None:
            props["adapters"] = og.AdapterConfig(adapter, 2.0, og.AdapterConfig.Mode.MODE_DYNAMIC)  # alpha / r
        return og.ContinuousBatchingPipeline(str(packaged_gguf()), config, "CPU", props)

    def run(pipe, n: int, new_tokens: int, adapter=None) -> list[dict]:
        """n copies of the prompt through add_request/step; per request: first-token time and ids."""
        config = og.GenerationConfig(max_new_tokens=new_tokens, do_sample=False)
        if adapter is not None:
            config.adapters = og.AdapterConfig(adapter, 2.0, og.AdapterConfig.Mode.MODE_DYNAMIC)
        started = time.monotonic()
        handles = [pipe.add_request(i, ov.Tensor(np.array([ids], dtype=np.int64)), config) for i in range(n)]
        results = [{"ids": [], "first": None} for _ in range(n)]
        while pipe.has_non_finished_requests():
            pipe.step()
            for handle, result in zip(handles, results, strict=True):
                if handle.can_read():
                    for output in handle.read().values():
                        result["ids"] += list(output.generated_ids)
                    if result["first"] is None and result["ids"]:
                        result["first"] = time.monotonic() - started
        for result in results:
            result["total"] = time.monotonic() - started
        return results

    started = time.monotonic()
    pipe = pipeline()
    out = {"engine": "openvino-genai CB (GGUF Q4_1)", "load_s": round(time.monotonic() - started, 1)}
    (single,) = run(pipe, 1, args.new_tokens)
    out["prefill_s"] = round(single["first"], 2)
    out["decode_tok_s"] = round((len(single["ids"]) - 1) / (single["total"] - single["first"]), 1)
    out["greedy_agree_16"] = prefix_agreement(single["ids"][:16], ref["reference_ids"])
    out["concurrent"] = []
    for n in (2, 4):
        results = run(pipe, n, args.new_tokens)
        seconds = max(r["total"] for r in results)
        out["concurrent"].append({"streams": n, "aggregate_tok_s": round(sum(len(r["ids"]) for r in results)
                                                                         / seconds, 1)})
    # Cancel: a request stopped by its handle leaves the batch at the next step.
    handle = pipe.add_request(99, ov.Tensor(np.array([ids], dtype=np.int64)),
                              og.GenerationConfig(max_new_tokens=400, do_sample=False))
    while not handle.can_read():
        pipe.step()
    started = time.monotonic()
    handle.cancel()
    while pipe.has_non_finished_requests():
        pipe.step()
    out["cancel_s"] = round(time.monotonic() - started, 2)
    del pipe
    # LoRA: peft's names as saved, and with the "base_model.model." prefix stripped (no "unused tensor" warning).
    tensors = load_file(lora / "adapter_model.safetensors")
    stripped = Path(tempfile.mkdtemp()) / "stripped.safetensors"
    save_file({k.replace("base_model.model.", ""): v for k, v in tensors.items()}, stripped)
    out["lora"] = {}
    for label, path in (("peft names", lora / "adapter_model.safetensors"), ("stripped names", stripped)):
        adapter = og.Adapter(str(path))
        (adapted,) = run(pipeline(adapter), 1, 16, adapter)
        out["lora"][label] = {"changes_output": adapted["ids"] != single["ids"][:16],
                              "agree_with_peft_16": prefix_agreement(adapted["ids"], ref["reference_lora_ids"])}
    return out


def requantised(src: Path, qtype_name: str, out_dir: Path) -> Path:
    from finassist.llm.llamacpp import requantised as requantise

    return requantise(src, qtype_name, out_dir / f"{src.stem}.{qtype_name}.gguf")


def bench_llamacpp(args, messages, lora: Path, ref: dict, gguf: Path, label: str) -> dict:
    from finassist.llm.llamacpp import LlamaCppLLM

    models = Settings().models_path
    started = time.monotonic()
    llm = LlamaCppLLM(gguf=gguf, models_dir=models, parallel=4, threads=args.threads, context_window=8192)
    out = {"engine": f"llama.cpp xllamacpp ({label})", "load_s": round(time.monotonic() - started, 1)}
    run = timed_stream(llm.stream(messages, GenerationParams(max_new_tokens=args.new_tokens)))
    out |= {k: v for k, v in run.items() if k != "final"}
    out["prompt_tokens"] = run["final"].prompt_tokens
    out["greedy_agree_16"] = prefix_agreement(run["final"].extra["token_ids"][:16], ref["reference_ids"])
    out["cancel_s"] = cancel_latency(llm, messages)
    out["concurrent"] = [concurrent(llm, messages, n, args.new_tokens) for n in (2, 4)]
    llm.close()
    if gguf == packaged_gguf():
        adapted = LlamaCppLLM(gguf=gguf, adapter=lora, models_dir=models, parallel=1, threads=args.threads)
        got = adapted.generate(messages, GenerationParams(max_new_tokens=16)).extra["token_ids"]
        out["lora"] = {"gguf lora": {"changes_output": got != run["final"].extra["token_ids"][:16],
                                     "agree_with_peft_16": prefix_agreement(got, ref["reference_lora_ids"])}}
        adapted.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=1200)
    parser.add_argument("--engines", default="transformers,openvino,llamacpp")
    parser.add_argument("--requant", default="", help="also llama.cpp on these requantisations, e.g. Q8_0,Q4_0")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir(Settings().models_path))
    messages = rag_messages(args.prompt_tokens, tokenizer)
    ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))
    work = Path(tempfile.mkdtemp(prefix="engines-"))
    lora = random_lora(work / "lora")
    engines = args.engines.split(",")
    report = {"date": datetime.now(UTC).isoformat(timespec="minutes"), "model": PACKAGED_MODEL,
              "prompt_tokens": len(ids), "new_tokens": args.new_tokens, "threads": args.threads,
              "loadavg_before": os.getloadavg()[0], "results": []}
    print(f"prompt {len(ids)} tokens, {args.new_tokens} new, {args.threads} threads, load {os.getloadavg()[0]:.1f}",
          file=sys.stderr)
    ref = bench_transformers(args, messages, lora)  # always: the greedy and peft references
    if "transformers" in engines:
        report["results"].append({k: v for k, v in ref.items() if not k.startswith("reference")})
    if "openvino" in engines:
        report["results"].append(bench_openvino(args, messages, lora, ids, ref))
    if "llamacpp" in engines:
        report["results"].append(bench_llamacpp(args, messages, lora, ref, packaged_gguf(), "Q4_1 packaged"))
        for name in filter(None, args.requant.split(",")):
            gguf = requantised(packaged_gguf(), name, work)
            report["results"].append(bench_llamacpp(args, messages, lora, ref, gguf, f"{name} requantised"))
    report["loadavg_after"] = os.getloadavg()[0]
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
