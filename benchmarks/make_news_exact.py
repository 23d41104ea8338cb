"""Build `data/news_exact/`: a small BEIR set of exact-term questions over data/sample_news.jsonl.

The questions hinge on one exact token, the kind dense embeddings blur: a figure (`41.7%`, `$47.53`), a person's
name, a ticker. Relevance is by construction: every article whose cleaned text contains the term (terms in more
than `MAX_DF` articles are skipped, tickers excepted). Deterministic (one seeded RNG): re-running rewrites the files
byte-identically.

    .venv/bin/python benchmarks/make_news_exact.py     # writes data/news_exact/{corpus,queries}.jsonl, qrels/test.tsv
"""

from __future__ import annotations

import html
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "sample_news.jsonl"
OUT = ROOT / "data" / "news_exact"
MAX_DF = {"figure": 3, "name": 8}  # more articles than this carry the term: skipped
PER_KIND = {"figure": 40, "name": 25}

FIGURE = re.compile(
    r"(?<![\w.$])\$?\d[\d,]*\.\d+(?:%| (?:million|billion))?|(?<![\w.$])\$\d[\d,]*(?: (?:million|billion))?"
)
# a person: two capitalised words after a word that introduces a speaker
NAME = re.compile(r"\b(?:with|said|says|by|analyst|CEO|CFO|chief|Officer) ([A-Z][a-z]{2,} [A-Z][a-z]{2,})\b")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
STOP = {"that", "this", "with", "from", "have", "their", "been", "were", "after", "which", "about", "into", "than"}
STOP |= {"over", "also", "said", "says", "will", "would", "company", "companies", "quarter", "year"}
FIGURE_QUESTIONS = [
    "Which news mentions {term} {context}?",
    "{context}: {term}",
    "Where was {term} reported, {context}?",
]
NAME_QUESTIONS = ["What did {term} say?", "News quoting {term}", "Which company does {term} work for?"]
TICKER_QUESTIONS = ["Why did {term} shares move?", "latest on {term}"]


def clean(raw: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw))).strip()


def main() -> None:
    rng = random.Random(20261201)
    docs = [json.loads(line) for line in SOURCE.open(encoding="utf-8") if line.strip()]
    texts = {str(d["id"]): f"{d['headline']}. {clean(d.get('content') or d.get('summary') or '')}" for d in docs}

    bodies = {str(d["id"]): clean(d.get("content") or "") for d in docs}
    lowercase = {w for t in texts.values() for w in WORD.findall(t) if w.islower()}

    def containing(term: str) -> list[str]:
        return [i for i, t in texts.items() if term in t]

    queries: list[dict] = []
    qrels: list[tuple[str, str]] = []

    def add(kind: str, term: str, question: str, relevant: list[str]) -> None:
        qid = f"{kind}-{len(queries):03d}"
        queries.append({"_id": qid, "text": question, "kind": kind, "term": term})
        qrels.extend((qid, d) for d in relevant)

    seen: set[str] = set()
    for kind, pattern, templates in (("figure", FIGURE, FIGURE_QUESTIONS), ("name", NAME, NAME_QUESTIONS)):
        candidates = []
        for text in bodies.values():  # bodies only: headlines are Title Case
            for sentence in re.split(r"(?<=[.!?]) ", text):
                for m in pattern.finditer(sentence):
                    g = 1 if kind == "name" else 0
                    term = m.group(g).rstrip(".,")
                    # a name: two capitalised words neither of which the corpus ever writes in lower case
                    if kind == "name" and any(w.lower() in lowercase for w in term.split()):
                        continue
                    if term in seen or len(containing(term)) > MAX_DF[kind]:
                        continue
                    seen.add(term)
                    after = [w for w in WORD.findall(sentence[m.end(g) :]) if w.lower() not in STOP]
                    before = [w for w in WORD.findall(sentence[: m.start(g)]) if w.lower() not in STOP]
                    candidates.append((term, (after[:1] + before[-1:]) or after[:2] or before[-2:]))
        for term, near in rng.sample(candidates, min(PER_KIND[kind], len(candidates))):
            # Figures come with the words next to them (a person names what the number is about).
            context = " ".join(near).lower()
            add(kind, term, rng.choice(templates).format(term=term, context=context).strip(), containing(term))
    tickers = sorted({s for d in docs for s in d.get("symbols", [])})
    for t in tickers:
        relevant = containing(f"({t})") or containing(t)
        if relevant:
            add("ticker", t, rng.choice(TICKER_QUESTIONS).format(term=t), relevant)

    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    with (OUT / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"_id": str(d["id"]), "title": d["headline"], "text": clean(d.get("content") or "")})
                    + "\n")
    with (OUT / "queries.jsonl").open("w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps({"_id": q["_id"], "text": q["text"], "answer_from": q["kind"]}) + "\n")
    with (OUT / "qrels" / "test.tsv").open("w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t1\n" for q, d in qrels)
    kinds = {k: sum(q["kind"] == k for q in queries) for k in ("figure", "name", "ticker")}
    print(f"{len(docs)} documents, {len(queries)} queries {kinds}, {len(qrels)} judgements -> {OUT}")


if __name__ == "__main__":
    main()
