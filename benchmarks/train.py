"""Training throughput: tokens/s and peak RSS of `finassist train` configurations, side by side in one run.

    python benchmarks/train.py [--examples 8] [--configs default,bs4,qlora] [--device cpu|cuda]

A dataset of `--examples` training examples (+2 held out) is built the way `dataset generate` would with k=3:
packaged questions and personas, each with the 3 chunks of data/sample_news.jsonl that the real transforms
(validate → clean → chunk) make and the real embedder ranks highest for the question, and a reference answer of
the first ~100 words of the top article (no teacher: the length, not the content, sets the cost). Each
configuration is one real `finassist train` subprocess (1 epoch, so every example is seen once) on that dataset:
tokens/s = the examples' prompt + answer tokens (the chat template's, no padding) / the trainer's runtime, and peak
RSS is the subprocess's maximum resident set (os.wait4). Progress goes to stderr; the last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {  # overrides of TrainConfig's defaults (batch 1 x 4 accumulation steps, LoRA r=16, fp32 on CPU)
    "default": [],
    "bs4": ["batch_size=4", "grad_accum=1"],
    "bs4-ckpt": ["batch_size=4", "grad_accum=1", "gradient_checkpointing=true"],
    "bs2-ckpt": ["batch_size=2", "grad_accum=2", "gradient_checkpointing=true"],
    "qlora": ["qlora=true"],
}


def build_dataset(home: Path, n: int) -> tuple[str, int]:
    from transformers import AutoTokenizer

    from finassist.config import Settings
    from finassist.embed import get_embedder
    from finassist.feature.flow import job_key, run_flow
    from finassist.feature.sources.file import NewsFileSource
    from finassist.llm.local import packaged_model_dir
    from finassist.prompt import training_messages
    from finassist.retrieval import Retriever, retrieve_for_question
    from finassist.store import close_stores, open_store
    from finassist.symbols import load_aliases
    from finassist.training.dataset import MANIFEST, QAExample
    from finassist.training.questions import load_questions

    settings = Settings(home=home, retrieval_k=3)
    news = [ROOT / "data" / "sample_news.jsonl"]
    run_flow(NewsFileSource(news, batch_size=64), settings, job_key("file", [str(news[0])], settings))
    retriever = Retriever(open_store(settings), get_embedder())
    questions = load_questions(None)
    aliases = load_aliases(None)
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_dir(settings.models_path)))
    examples, tokens = [], 0
    for i, q in enumerate(questions.questions[: n + 2]):
        hits = retrieve_for_question(retriever, q.question, 3, settings.recency_weight,
                                     settings.recency_half_life_hours, aliases).hits
        answer = " ".join(hits[0].text.split()[:100])
        example = QAExample(id=q.id, about_me=questions.about_me(q), question=q.question, context=hits,
                            answer=answer, teacher="benchmark", prompt_version="v1", created_at=datetime.now(UTC))
        examples.append(example)
        if i < n:
            messages = training_messages(example.question, example.context, example.answer, example.about_me)
            tokens += len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))
    close_stores()
    version = "bec4000000aa"  # hex, like a real version
    folder = settings.datasets_dir / version
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in examples[:n]))
    (folder / "eval.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in examples[n:]))
    (folder / MANIFEST).write_text(json.dumps({"version": version, "created_at": datetime.now(UTC).isoformat()}))
    return version, tokens


def run_config(home: Path, version: str, overrides: list[str], device: str) -> dict:
    args = [sys.executable, "-m", "finassist.cli", "train", "--json", "--set", f"dataset={version}",
            "--set", "epochs=1", *[a for o in overrides for a in ("--set", o)]]
    env = {**os.environ, "FINASSIST_HOME": str(home), "FINASSIST_TRACING": "false", "FINASSIST_COMET_MODE": "off"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    log = home / f"train-{time.monotonic_ns()}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"train {overrides} failed:\n{log.read_text()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"metrics": result["metrics"], "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--configs", default="default,bs4,qlora")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    os.environ.setdefault("FINASSIST_MODELS_DIR", str(ROOT / ".cache" / "models"))
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        home = Path(tmp) / "home"
        version, tokens = build_dataset(home, args.examples)
        print(f"dataset: {args.examples} examples, {tokens} tokens", file=sys.stderr)
        results = {}
        for name in args.configs.split(","):
            r = run_config(home, version, CONFIGS[name], args.device)
            seconds = r["metrics"]["train_runtime"]
            r |= {"tokens_per_s": round(tokens / seconds, 1), "seconds": round(seconds, 1),
                  "overrides": CONFIGS[name]}
            results[name] = r
            print(f"{name}: {r['tokens_per_s']} tokens/s, peak RSS {r['peak_rss_mb']} MB, {seconds:.0f} s",
                  file=sys.stderr)
    print(json.dumps({"date": datetime.now(UTC).date().isoformat(), "device": args.device,
                      "examples": args.examples, "tokens": tokens, "configs": results}))


if __name__ == "__main__":
    main()
