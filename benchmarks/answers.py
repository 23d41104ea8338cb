"""Answer quality through the real RAG chain: does the answer state the gold fact, and cite the article it is in?

    python benchmarks/answers.py [--backend B] [--model M] [--adapter A] [--set KEY=VALUE ...] [--limit N]
                                 [--out results.json] [--label NAME]
    python benchmarks/answers.py --check      # the QA set against the news only: no model, no store
    python benchmarks/answers.py --replay results.json   # re-score a run's own model answers with today's checks

The QA set (data/answers_qa.jsonl, see data/README.md) is about data/sample_news.jsonl, which is ingested through
the feature pipeline into a throw-away FINASSIST_HOME. Each question then goes through `Services.load()` +
`RAGChain.stream`, the code path of `/v1/ask`, with the settings the environment gives (FINASSIST_*, .env) plus
the overrides here: `--backend`/`--model`/`--adapter` are FINASSIST_LLM_BACKEND/_MODEL/_ADAPTER, and `--set` any
other setting (e.g. `--set max_new_tokens=128 --set answer_checks=false`). The base model unless `--adapter` names
one (the throw-away home has no registry champion).

Scores, per question kind (figure / name / event / not-covered):
- states: the answer contains one of the gold spellings after normalisation (case, $ and thousands separators,
  "4.30" = "4.3", "bn"/"B" = "billion", dashes); for not-covered questions, it says the news does not cover it.
- cites: one of its [n] markers points to a returned source that is a gold article (covered questions only).
- retrieved: a gold article is among the returned sources (separates retrieval misses from answer misses).
Latency is the wall-clock time of each whole answer, after one warm-up question that is not scored. `model_only`
scores the model's own text of the same run, before the answer checks (answer_checks.py, answer_review.py) changed it.
`--replay` runs the same chain with an LLM that returns a results file's recorded model answers: the checks
re-scored without generating again (latency: the recorded run's).
Prints a markdown table row, then one JSON object (with per-question rows when `--out` is not given).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QA = ROOT / "data" / "answers_qa.jsonl"
NEWS = ROOT / "data" / "sample_news.jsonl"
KINDS = ("figure", "name", "event", "not-covered")

# How an answer says the news does not cover the question (the chain's own wording and a model's usual ones).
NOT_COVERED = re.compile(
    r"does(?:n't| not) (?:cover|mention|say|contain|include|provide|have)|not covered|no (?:news|information|"
    r"articles?|data|mention|details?|reports?)\b|(?:is|are|was|were) not (?:mentioned|available|provided|"
    r"included|reported)|(?:don't|do not|cannot|can't|could not|couldn't) (?:find|answer|say|tell|provide)|"
    r"not (?:able|possible) to (?:answer|find|say)|unable to (?:answer|find)|there is no",
    re.IGNORECASE,
)
_MARKER = re.compile(r"\[(\d{1,3})\]")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- scoring -------------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case; no $ or thousands separators; 4.30 → 4.3; 4.3B/bn → 4.3 billion; dashes and hyphens → spaces."""
    text = html.unescape(text).lower().replace("\u00a0", " ")
    text = re.sub(r"[\u2010-\u2015\-]", " ", text)
    text = re.sub(r"[\u2018\u2019]", "'", text).replace("$", "")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(\d+\.\d*?)0+\b", r"\1", text)
    text = re.sub(r"(\d)\.(?!\d)", r"\1", text)
    text = re.sub(r"(\d)\s?(?:bn|b)\b", r"\1 billion", text)
    text = re.sub(r"(\d)\s?(?:mn|m)\b", r"\1 million", text)
    text = re.sub(r"\s?per ?cent\b", "%", text)
    return re.sub(r"\s+", " ", text).strip()


def states(answer: str, gold: list[str]) -> bool:
    said = normalise(answer)
    return any(re.search(rf"(?<![\w.]){re.escape(normalise(g))}(?![\w])", said) for g in gold)


def says_not_covered(answer: str) -> bool:
    return bool(NOT_COVERED.search(answer))


def cited_articles(answer: str, source_ids: list[str]) -> list[str]:
    ranks = [int(m) for m in _MARKER.findall(answer)]
    return [source_ids[r - 1] for r in dict.fromkeys(ranks) if 1 <= r <= len(source_ids)]


def score(row: dict[str, Any], answer: str, source_ids: list[str]) -> dict[str, Any]:
    cited = cited_articles(answer, source_ids)
    if row["kind"] == "not-covered":
        return {"states": says_not_covered(answer), "cites": None, "retrieved": None, "cited": cited}
    gold_ids = set(row["article_ids"])
    return {
        "states": states(answer, row["gold"]),
        "cites": bool(gold_ids & set(cited)),
        "retrieved": bool(gold_ids & set(source_ids)),
        "cited": cited,
    }


def share(values: list[bool | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return round(sum(scored) / len(scored), 3) if scored else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    covered = [r for r in rows if r["kind"] != "not-covered"]
    by_kind = {
        kind: {"n": len(rs), "states": share([r["states"] for r in rs]), "cites": share([r["cites"] for r in rs])}
        for kind in KINDS
        if (rs := [r for r in rows if r["kind"] == kind])
    }
    latency = sorted(r["latency_s"] for r in rows)
    return {
        "questions": len(rows),
        "states": share([r["states"] for r in rows]),
        "cites": share([r["cites"] for r in covered]),
        "states_and_cites": share([r["states"] and r["cites"] for r in covered]),
        "retrieved": share([r["retrieved"] for r in covered]),
        "by_kind": by_kind,
        "fallbacks": sum(any("quoted the news" in n for n in r["notes"]) for r in rows),
        "answered_without_model": sum(r["model_answer"] is None for r in rows),
        # The same generations scored before the answer checks (questions answered without the model excluded).
        "model_only": {
            "questions": sum(r["model_answer"] is not None for r in rows),
            "states": share([r["model_states"] for r in rows]),
            "cites": share([r["model_cites"] for r in covered]),
            "by_kind": {kind: share([r["model_states"] for r in rows if r["kind"] == kind]) for kind in KINDS},
        },
        "latency_s": {
            "p50": round(statistics.median(latency), 2),
            "p95": round(latency[min(len(latency) - 1, int(0.95 * len(latency)))], 2),
            "mean": round(statistics.fmean(latency), 2),
        },
        "completion_tokens_mean": round(statistics.fmean(r["completion_tokens"] for r in rows), 1),
        "prompt_tokens_mean": round(statistics.fmean(r.get("prompt_tokens", 0) for r in rows), 1),
    }


# --- the QA set ----------------------------------------------------------------------------------------------


def read_qa(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        if r["kind"] not in KINDS or (r["kind"] != "not-covered") != bool(r["gold"] and r["article_ids"]):
            raise ValueError(f"{path}: {r['id']} needs gold and article_ids exactly when it is covered")
    return rows


def latest_articles(path: Path) -> dict[str, dict[str, Any]]:
    """id → the article's last version (the file is ordered by updated_at, as a feed delivers them)."""
    out: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out[str(row["id"])] = row
    return out


def check_qa(qa: list[dict[str, Any]], news: dict[str, dict[str, Any]]) -> list[str]:
    """Problems of the QA set: an unknown article id, a gold spelling not in the first (main) article, a question
    about a company without news (`"uncovered": "company"`) whose company has news."""
    from finassist.symbols import load_aliases, symbols_in

    def text(a: dict[str, Any]) -> str:
        body = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", a.get("content") or "", flags=re.S)
        return f"{a['headline']} {a.get('summary') or ''} {body}"

    problems = []
    tagged = {s for a in news.values() for s in a.get("symbols", [])}
    for r in qa:
        unknown = [i for i in r["article_ids"] if i not in news]
        if unknown:
            problems.append(f"{r['id']}: unknown article ids {unknown}")
        elif r["kind"] != "not-covered" and not all(states(text(news[i]), r["gold"]) for i in r["article_ids"][:1]):
            problems.append(f"{r['id']}: no gold spelling in article {r['article_ids'][0]}")
        if r.get("uncovered") == "company" and (named := set(symbols_in(r["question"], load_aliases())) & tagged):
            problems.append(f"{r['id']}: not-covered, but the news has articles tagged {sorted(named)}")
    return problems


# --- the run -------------------------------------------------------------------------------------------------


def replay_llm(results: dict[str, Any]) -> Any:
    """An LLM that answers each question with the model text a results file recorded for it ('' when none)."""
    from finassist.llm import LLM, Generation, ModelInfo

    recorded = {r["question"]: r.get("model_answer") or "" for r in results["rows"]}

    class ReplayLLM(LLM):
        info = ModelInfo(backend=results["backend"], model=results["model"], adapter=results["adapter"],
                         prompt_version=None, context_window=8192)

        def count_tokens(self, messages):
            return sum(len(m["content"]) for m in messages) // 4

        def stream(self, messages, params):
            text = recorded.get(messages[-1]["content"].rsplit("Question: ", 1)[-1].strip(), "")
            yield text
            yield Generation(text, prompt_tokens=0, completion_tokens=len(text.split()))

    return ReplayLLM()


def overrides(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, not {item!r}")
        out[key.strip().lower().removeprefix("finassist_")] = value
    for key, value in (("llm_backend", args.backend), ("llm_model", args.model), ("llm_adapter", args.adapter)):
        if value is not None:
            out[key] = value
    return out


def run(args: argparse.Namespace, qa: list[dict[str, Any]]) -> dict[str, Any]:
    import finassist.prompt
    from finassist.config import Settings
    from finassist.feature.flow import run_flow
    from finassist.feature.sources.file import NewsFileSource
    from finassist.inference.chain import Answer, AskInput
    from finassist.inference.services import Services
    from finassist.store import close_stores

    if args.prompt_version:
        finassist.prompt.get_template(args.prompt_version)  # an unknown version fails here, before any work
        finassist.prompt.PROMPT_VERSION = args.prompt_version  # what a base model's prompts are built with
    given = overrides(args)
    configured = Settings()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="finassist-answers-") as tmp:
        # The converted base models stay where they are (a throw-away models folder would convert again).
        settings = Settings(**{"models_dir": configured.models_path.resolve(), "tracing": False, **given,
                               "home": Path(tmp) / "home"})
        t0 = time.perf_counter()
        stats = run_flow(NewsFileSource([args.news], batch_size=settings.batch_articles), settings, "answers-bench")
        ingest_s = time.perf_counter() - t0
        log(f"ingested {stats.articles_ok} articles ({stats.chunks} chunks) in {ingest_s:.1f} s")
        replayed = json.loads(args.replay.read_text()) if args.replay else None
        services = Services(settings, llm=replay_llm(replayed) if replayed else None)
        services.load()
        if services.chain is None:
            raise SystemExit(f"the chain did not load: {services.error}")
        chain = services.chain
        records: list[Any] = []
        chain.on_finish = records.append  # the run records: the model's own text, before the checks
        chain.ask(AskInput(question="What is new in the markets?"))  # warm-up: first-call costs are not latency
        rows = []
        try:
            for i, row in enumerate(qa, 1):
                started = time.perf_counter()
                first_piece = None
                answer: Answer | None = None
                for item in chain.stream(AskInput(question=row["question"])):
                    if isinstance(item, Answer):
                        answer = item
                    elif first_piece is None:
                        first_piece = time.perf_counter() - started
                assert answer is not None
                latency = time.perf_counter() - started
                source_ids = [s.article_id for s in answer.sources]
                generation = records[-1].generation
                model_text = generation.text if generation is not None else None  # None: answered without it
                model_score = score(row, model_text, source_ids) if model_text is not None else {}
                result = {
                    "id": row["id"], "kind": row["kind"], "question": row["question"], "gold": row["gold"],
                    "article_ids": row["article_ids"], "answer": answer.answer, "sources": source_ids,
                    **score(row, answer.answer, source_ids),
                    "model_answer": model_text,
                    "model_states": model_score.get("states"), "model_cites": model_score.get("cites"),
                    "latency_s": round(latency, 2),
                    "first_piece_s": round(first_piece, 2) if first_piece is not None else None,
                    "prompt_tokens": answer.usage.prompt_tokens,
                    "completion_tokens": answer.usage.completion_tokens, "finish_reason": answer.finish_reason,
                    "notes": answer.notes,
                }
                if replayed:
                    was = next(r for r in replayed["rows"] if r["question"] == row["question"])
                    result |= {"latency_s": was["latency_s"], "first_piece_s": was["first_piece_s"],
                               "sources_as_recorded": was["sources"] == source_ids}
                rows.append(result)
                mark = "ok " if result["states"] else "-- "
                log(f"{i:>3}/{len(qa)} {mark}{row['id']} {latency:5.1f}s  {answer.answer[:110]!r}")
        finally:
            info = chain.llm.info
            chain.llm.close()
            close_stores()
    return {
        "date": date.today().isoformat(),
        "label": args.label or f"{info.backend}:{info.model}" + (" (replayed)" if args.replay else ""),
        "replayed_from": str(args.replay) if args.replay else None,
        "backend": info.backend,
        "model": info.model,
        "adapter": info.adapter,
        "overrides": given,
        "answer_checks": settings.answer_checks,
        "max_new_tokens": settings.max_new_tokens,
        "retrieval": {"mode": settings.retrieval_mode, "k": settings.retrieval_k},
        "prompt_version": chain.prompt_version or finassist.prompt.PROMPT_VERSION,
        "cpus": os.cpu_count(),
        "torch_threads": _torch_threads(),
        "ingest_s": round(ingest_s, 1),
        # Latency on 2 shared cores depends on what else runs: the 1/5/15-minute load at the start and the end.
        "loadavg": [round(x, 2) for x in (*load_start, *os.getloadavg())],
        "qa_set": str(args.qa.relative_to(ROOT)) if args.qa.is_relative_to(ROOT) else str(args.qa),
        "qa_kinds": dict(Counter(r["kind"] for r in qa)),
        **summarise(rows),
        "rows": rows,
    }


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def markdown_row(result: dict[str, Any]) -> str:
    k = result["by_kind"]

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.0f}%"

    cells = [
        result["date"], result["label"] + (f" + {result['adapter']}" if result["adapter"] else ""),
        "on" if result["answer_checks"] else "off", str(result["questions"]), pct(result["states"]),
        pct(result["cites"]), pct(result["states_and_cites"]), pct(result["retrieved"]),
        *(pct(k.get(kind, {}).get("states")) for kind in KINDS),
        f"{result['latency_s']['p50']} / {result['latency_s']['p95']}",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| date | model | checks | questions | states gold | cites gold article | both | retrieved | figure | name | "
    "event | not-covered | latency p50 / p95 s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qa", type=Path, default=QA)
    ap.add_argument("--news", type=Path, default=NEWS)
    ap.add_argument("--backend", help="FINASSIST_LLM_BACKEND for this run")
    ap.add_argument("--model", help="FINASSIST_LLM_MODEL for this run (a catalog name, HF id or path)")
    ap.add_argument("--adapter", default="", help="FINASSIST_LLM_ADAPTER for this run; default '' = base model")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any other setting")
    ap.add_argument("--limit", type=int, help="only the first N questions (a smoke run; not a score)")
    ap.add_argument("--label", help="name of this configuration in the table row")
    ap.add_argument("--out", type=Path, help="write the full JSON (with per-question rows) here")
    ap.add_argument("--check", action="store_true", help="check the QA set against the news, then exit")
    ap.add_argument("--replay", type=Path, help="a results file (--out) whose model answers to re-check")
    ap.add_argument("--prompt-version", help="the prompt template for the base model (default: the current one)")
    args = ap.parse_args()

    qa = read_qa(args.qa)
    problems = check_qa(qa, latest_articles(args.news))
    if problems:
        raise SystemExit("the QA set does not match the news:\n  " + "\n  ".join(problems))
    if args.check:
        print(json.dumps({"questions": len(qa), "kinds": dict(Counter(r["kind"] for r in qa)), "problems": 0}))
        return
    result = run(args, qa[: args.limit] if args.limit else qa)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        log(f"wrote {args.out}")
        result = {k: v for k, v in result.items() if k != "rows"}
    print(HEADER)
    print(markdown_row(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
