"""A second QA set for benchmarks/answers.py, from a BEIR folder whose queries carry their answers (TAT-QA does).

    python benchmarks/beir_qa.py ../shared/data/tatqa_dev OUT [--n 40] [--skip 40]
    python benchmarks/answers.py --news OUT/news.jsonl --qa OUT/qa.jsonl --out tatqa.json

The answer benchmark's own set (data/answers_qa.jsonl) was written by hand about data/sample_news.jsonl, by the
people who also wrote the answer checks; this one was not. It writes:
- OUT/news.jsonl: every corpus document as a news record (`feature.evaluate.corpus_as_news`, the conversion
  `finassist eval retrieval` uses), so the questions are asked over the whole corpus, distractors included;
- OUT/qa.jsonl: `--n` questions whose answer is one short figure stated verbatim in its gold document (a single
  span of at most 24 characters with two digits or more, not a bare year: "$1,496.5", "15%"), kind "figure",
  chosen by the SHA-1 of their ids (a fixed sample that depends on no score). Computed answers (changes, ratios)
  and long text spans are left out: "states the gold" can only be judged on a figure the sources contain.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from finassist.feature.evaluate import corpus_as_news, read_qrels  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def eligible(query: dict, gold_texts: list[str]) -> str | None:
    """The query's answer when it is one short figure that a gold document states verbatim, else None."""
    answer = query.get("answer")
    if not (isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], str)):
        return None
    span = answer[0].strip()
    if not span or len(span) > 24 or sum(ch.isdigit() for ch in span) < 2:  # "1" is in any "[1]"
        return None
    if re.fullmatch(r"(?:19|20)\d\d", span):  # "In which year was X larger?": any answer naming years would pass
        return None
    return span if any(span in text for text in gold_texts) else None


def build(beir: Path, n: int, skip: int = 0) -> tuple[list[dict], list[dict]]:
    docs = read_jsonl(beir / "corpus.jsonl")
    by_id = {str(d["_id"]): d for d in docs}
    qrels = read_qrels(beir / "qrels" / "test.tsv")
    rows = []
    for q in read_jsonl(beir / "queries.jsonl"):
        gold_ids = [i for i, score in qrels.get(str(q["_id"]), {}).items() if score > 0 and i in by_id]
        span = eligible(q, [by_id[i].get("text", "") for i in gold_ids])
        if span is None:
            continue
        # The article that states it first: answers.py --check verifies the first gold article has the spelling.
        gold_ids.sort(key=lambda i: span not in by_id[i].get("text", ""))
        rows.append({"id": str(q["_id"]), "kind": "figure", "question": q["text"].strip(), "gold": [span],
                     "article_ids": gold_ids, "answer_from": q.get("answer_from")})
    rows.sort(key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())
    return [corpus_as_news(d) for d in docs], rows[skip : skip + n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("beir", type=Path, help="BEIR folder: corpus.jsonl, queries.jsonl (with answers), qrels/test.tsv")
    ap.add_argument("out", type=Path, help="folder to write news.jsonl and qa.jsonl into")
    ap.add_argument("--n", type=int, default=40, help="questions to sample")
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the first SKIP of the sample's order: --skip 40 gives 40 others, disjoint")
    args = ap.parse_args()
    news, qa = build(args.beir, args.n, args.skip)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in (("news.jsonl", news), ("qa.jsonl", qa)):
        with (args.out / name).open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    print(f"wrote {len(news)} documents and {len(qa)} questions to {args.out}")


if __name__ == "__main__":
    main()
