"""Cleaning at scale: seconds per MB of clean + chunk from 10 KB to 2 MB records; what cleaning drops of real news.

    python benchmarks/clean_scaling.py [--sizes 10,100,500,1000,2000] [--data PATH.jsonl.gz]

Part 1, linearity: one record per (shape, size): flat HTML paragraphs, deeply nested HTML ('<div>x' repeated, the
shape that was quadratic, and nested <span>), and plain long text. Each is cleaned (`clean_article`) and chunked
(`chunk_articles`, the packaged model's tokenizer), best of ≥ 3 runs and ≥ 1 s. Linear means seconds per MB flat
across sizes: the ratio of the largest to the smallest s/MB per shape is printed (target ≤ 2).
Part 2, real headlines: every record of the Benzinga file validated and cleaned; counts how many headlines come out
empty (quarantined for emptiness: target 0) besides those already empty in the source.
Prints a markdown report to stderr and one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from datetime import date
from pathlib import Path

from finassist.domain import CleanArticle, NewsArticle, Quarantined, RawRecord
from finassist.feature.chunk import ChunkSpec, chunk_articles
from finassist.feature.clean import clean_article
from finassist.feature.validate import validate_record

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benzinga_headlines.jsonl.gz"
SENTENCE = "Acme Corp said third-quarter revenue rose 12% to $4.1 billion, beating estimates of $3.9 billion. "


def make_markup(shape: str, size: int) -> str:
    """About `size` bytes of one shape of content."""
    if shape == "flat_html":
        unit = f"<p>{SENTENCE}<b>Shares</b> gained 3%.</p>\n"
    elif shape == "nested_div":
        unit = "<div>x"
    elif shape == "nested_span":
        unit = "<span>x"
    else:
        unit = SENTENCE
    return unit * max(1, size // len(unit))


def time_record(
    markup: str, tokenizer, spec: ChunkSpec, min_reps: int = 3, min_total_s: float = 1.0
) -> tuple[float, int]:
    """Best time of clean + chunk over at least `min_reps` runs and `min_total_s` seconds (small records need many
    runs for a stable best on a shared machine)."""
    article = NewsArticle(id="bench", headline="Acme results", content=markup, created_at="2026-10-01T00:00:00Z")
    best, chunks, reps, spent = float("inf"), 0, 0, 0.0
    while reps < min_reps or spent < min_total_s:
        reps += 1
        started = time.perf_counter()
        clean = clean_article(article)
        assert isinstance(clean, CleanArticle)
        chunks = len(chunk_articles([clean], tokenizer, spec)[0].chunks)
        took = time.perf_counter() - started
        best, spent = min(best, took), spent + took
    return best, chunks


def linearity(sizes_kb: list[int]) -> dict:
    from tokenizers import Tokenizer

    from finassist.embed import default_model_path

    tokenizer = Tokenizer.from_file(str(Path(default_model_path()) / "tokenizer.json"))
    tokenizer.no_truncation()
    spec = ChunkSpec(200, 40, 256)
    out = {}
    for shape in ("flat_html", "nested_div", "nested_span", "plain_text"):
        rows = []
        for kb in sizes_kb:
            markup = make_markup(shape, kb * 1000)
            seconds, chunks = time_record(markup, tokenizer, spec)
            mb = len(markup.encode()) / 1e6
            rows.append({"kb": kb, "seconds": round(seconds, 4), "s_per_mb": round(seconds / mb, 3), "chunks": chunks})
            print(f"{shape} {kb} KB: {seconds:.3f} s ({seconds / mb:.2f} s/MB, {chunks} chunks)", file=sys.stderr)
        per_mb = [r["s_per_mb"] for r in rows]
        out[shape] = {"rows": rows, "max_over_min_s_per_mb": round(max(per_mb) / min(per_mb), 2)}
    return out


def real_headlines(path: Path) -> dict:
    counts = {"records": 0, "empty_in_source": 0, "emptied_by_cleaning": 0, "other_quarantine": 0, "kept": 0}
    examples: list[str] = []
    with gzip.open(path, "rb") as f:
        for i, line in enumerate(f):
            counts["records"] += 1
            if not json.loads(line).get("headline", "").strip():
                counts["empty_in_source"] += 1
                continue
            out = validate_record(RawRecord(f"{path.name}:{i + 1}", line), max_bytes=2_000_000)
            if isinstance(out, NewsArticle):
                out = clean_article(out)
            if isinstance(out, Quarantined):
                emptied = "empty after cleaning" in out.reason
                counts["emptied_by_cleaning" if emptied else "other_quarantine"] += 1
                if len(examples) < 5:
                    examples.append(f"{out.reason}: {out.raw[:120]}")
            else:
                counts["kept"] += 1
    return {**counts, "examples": examples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,500,1000,2000", help="record sizes in KB")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    result = {"date": date.today().isoformat(), "linearity": linearity([int(s) for s in args.sizes.split(",")])}
    if args.data.is_file():
        result["headlines"] = real_headlines(args.data)
    else:
        print(f"{args.data} not found: the real-headline count is skipped", file=sys.stderr)
    sizes = args.sizes.split(",")
    print("\n| shape | " + " | ".join(f"{kb} KB s/MB" for kb in sizes) + " | max/min |", file=sys.stderr)
    print("|---" * (len(sizes) + 2) + "|", file=sys.stderr)
    for shape, r in result["linearity"].items():
        cells = " | ".join(f"{row['s_per_mb']:.2f}" for row in r["rows"])
        print(f"| {shape} | {cells} | {r['max_over_min_s_per_mb']} |", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
