#!/usr/bin/env python3
"""Check data/sample_news.jsonl and print the numbers quoted in data/README.md (standard library only).

    .venv/bin/python data/verify_sample_news.py [path]

Exits non-zero if a structural check fails (bad JSON, missing keys, bad timestamps, unsorted lines, ...).
"""

from __future__ import annotations

import collections
import datetime as dt
import html
import json
import re
import statistics
import sys
from pathlib import Path

REQUIRED = {"id": int, "headline": str, "summary": str, "author": str, "created_at": str, "updated_at": str,
            "url": str, "content": str, "symbols": list, "source": str}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def words(content: str) -> int:
    """Words after dropping <script>/<style> blocks and all tags and decoding entities."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", content)
    text = html.unescape(re.sub(r"(?s)<[^>]+>", " ", text))
    return len(text.replace("\u200b", "").split())


def ts(value: str) -> dt.datetime:
    if not TS.match(value):
        raise ValueError(f"timestamp not in YYYY-MM-DDTHH:MM:SSZ form: {value!r}")
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("sample_news.jsonl")
    errors: list[str] = []
    rows: list[dict] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: not JSON ({e})")
            continue
        if not isinstance(row, dict):
            errors.append(f"line {n}: not an object")
            continue
        for key, typ in REQUIRED.items():
            if key not in row:
                errors.append(f"line {n}: missing {key}")
            elif not isinstance(row[key], typ) or isinstance(row[key], bool):
                errors.append(f"line {n}: {key} is {type(row[key]).__name__}, expected {typ.__name__}")
        try:
            row["_c"], row["_u"] = ts(row["created_at"]), ts(row["updated_at"])
            if row["_u"] < row["_c"]:
                errors.append(f"line {n}: updated_at before created_at")
        except (KeyError, ValueError) as e:
            errors.append(f"line {n}: {e}")
            continue
        if not (isinstance(row.get("id"), int) and 10_000_000 <= row["id"] <= 99_999_999):
            errors.append(f"line {n}: id is not a positive 8-digit integer")
        if not all(isinstance(s, str) and re.match(r"^[A-Z][A-Z0-9]{2,9}$", s) for s in row.get("symbols", [])):
            errors.append(f"line {n}: odd symbol in {row.get('symbols')}")
        if not str(row.get("url", "")).startswith("https://news.example.com/"):
            errors.append(f"line {n}: url outside news.example.com")
        row["_w"] = words(row.get("content", ""))
        rows.append(row)

    keys = [(r["_u"], r["id"]) for r in rows]
    if keys != sorted(keys):
        errors.append("lines are not sorted by updated_at")

    by_id: dict[int, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by_id[r["id"]].append(r)
    dups = {i: v for i, v in by_id.items() if len(v) > 1}
    shorter = longer = same = 0
    for i, (a, b, *rest) in dups.items():
        if rest:
            errors.append(f"id {i}: more than two versions")
        if a["created_at"] != b["created_at"] or not b["_u"] > a["_u"] or a["content"] == b["content"]:
            errors.append(f"id {i}: second version must keep created_at, have a later updated_at and new content")
        if b["_w"] < a["_w"] / 2:
            shorter += 1
        elif b["_w"] > a["_w"]:
            longer += 1
        else:
            same += 1

    wc = [r["_w"] for r in rows]
    created = [r["_c"] for r in rows]
    regular = sum(1 for t in created if t.weekday() < 5 and (13, 30) <= (t.hour, t.minute) < (20, 0))
    symbols = collections.Counter(s for r in rows for s in r["symbols"])
    first_versions = [v[0] for v in by_id.values()]
    out = {
        "lines": len(rows),
        "distinct articles (ids)": len(by_id),
        "ids with two versions": len(dups),
        "second version much shorter / longer / similar": f"{shorter} / {longer} / {same}",
        "created_at range": f"{min(created):%Y-%m-%d %H:%M} .. {max(created):%Y-%m-%d %H:%M} UTC",
        "created_at in US regular hours (13:30-20:00 UTC, Mon-Fri)": f"{regular} ({regular / len(rows):.0%})",
        "distinct symbols": f"{len(symbols)}: {', '.join(sorted(symbols))}",
        "lines with several symbols": sum(1 for r in rows if len(r["symbols"]) > 1),
        "lines with no symbols": sum(1 for r in rows if not r["symbols"]),
        "sources": dict(collections.Counter(r["source"] for r in rows).most_common()),
        "words min / median / max": f"{min(wc)} / {statistics.median(wc):g} / {max(wc)}",
        "empty content (0 words)": f"{wc.count(0)} ({wc.count(0) / len(rows):.0%})",
        "1-299 words": sum(1 for w in wc if 0 < w < 300),
        "300-800 words": sum(1 for w in wc if 300 <= w <= 800),
        "801-2500 words": sum(1 for w in wc if 800 < w <= 2500),
        "over 2500 words (lines / articles)": f"{sum(1 for w in wc if w > 2500)} / "
                                              f"{sum(1 for r in first_versions if r['_w'] > 2500)}",
        "empty summary": sum(1 for r in rows if not r["summary"]),
        "lines with <table> / <h2> / <ul> / <script> / <style>": " / ".join(
            str(sum(1 for r in rows if tag in r["content"])) for tag in ("<table", "<h2>", "<ul>", "<script", "<style")
        ),
        "lines with U+200B / U+00A0 / curly quotes / mojibake": " / ".join(
            str(sum(1 for r in rows if q in r["content"])) for q in ("\u200b", "\u00a0", "\u2019", "\u00e2\u20ac")),
        "articles with 'Ignore previous instructions'": len({r["id"] for r in rows
                                                             if "Ignore previous instructions" in r["content"]}),
        "file size (bytes)": path.stat().st_size,
    }
    for k, v in out.items():
        print(f"{k}: {v}")
    for e in errors:
        print("ERROR", e)
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
