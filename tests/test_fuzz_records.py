"""Property-based fuzzing of validate → clean → chunk with hostile records (Hypothesis): 500 batches of 20, so
10,000 records a run. Nothing may escape any step, and every record ends valid (cleaned, chunked, UTF-8-safe text
without control or bidi characters) or quarantined with a reason."""

from __future__ import annotations

import json
import os
import re
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finassist.domain import ChunkedArticle, CleanArticle, NewsArticle, Quarantined, RawRecord
from finassist.feature.chunk import ChunkSpec, chunk_articles
from finassist.feature.clean import clean_article
from finassist.feature.validate import validate_record

FIELDS = ["id", "headline", "summary", "content", "author", "url", "source", "symbols", "created_at", "updated_at"]
REQUIRED = ("id", "headline", "created_at")
MAX_BYTES = 200_000
# What cleaned text must never contain: C0/C1 controls (except newline), bidi controls, zero-width marks.
FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200d\u202a-\u202e\u2066-\u2069\ufeff]")

# Text is drawn as a few fragments rather than character by character: drawing is what costs time in Hypothesis.
fragments = st.one_of(
    st.sampled_from(
        ["\x00", "\x07", "\x1b", "\x85", "\x8d", "\u202e", "\u2066", "\u2069", "\u200b", "\ufeff", "\ud800",
         "\udfff", "\U0001f4c8", "é", "\u00a0", "<", ">", "&", '"', "\\", "\n", "\r\n", "\t", " ", "Acme", " rose ",
         "5%", "$2.54 billion", "FY2022", "<b>", "</b>", "<p>", "</p>", "<br>", "<td>", "<table>", "<script>", "<!--",
         "&amp;", "&#x202e;", "&#0;", "&#xD800;", "&#1114112;", "Read Next: ", "© 2024 ", "Click here", "ï»¿", "â€™"]
    ),
    st.text(max_size=6),
)
text = st.one_of(
    st.lists(fragments, max_size=12).map("".join),
    st.builds(lambda tag, n, t: f"<{tag}>{t}" * n, st.sampled_from(["div", "span", "p", "b", "td", "li", "a href=x"]),
              st.sampled_from([1, 2, 10, 300, 1000]), st.text(max_size=3)),
    st.builds(lambda w, n: (w + " ") * n, st.lists(fragments, min_size=1, max_size=3).map("".join),
              st.sampled_from([1, 5, 50, 500, 3000])),
    st.sampled_from(["", " ", "<script>x</script>", "<p>Up 5%</p>", "x" * 2001, "<" * 5000, "&" * 5000]),
)
dates = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30T00:00:00Z", "now", "",
                     "2026-10-01T10:00:00Z", "1969-12-31T23:59:59Z", "2026-10-01T10:00:00.123456789+05:30"]),
    st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(), text)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


hostile_value = st.one_of(
    scalar, st.lists(scalar, max_size=5), st.dictionaries(st.text(max_size=5), scalar, max_size=3),
    st.integers(1, 1500).map(nested),
)
good_values = {
    "id": st.one_of(st.integers(0, 10**12), st.text(alphabet=string.ascii_letters, min_size=1, max_size=10)),
    "headline": text, "summary": text, "content": text, "author": text, "url": st.sampled_from(
        ["https://news.example.com/a", "javascript:alert(1)", "http://x", ""]),
    "source": text, "symbols": st.lists(st.one_of(st.sampled_from(["AAPL", "brk.b", " msft ", ""]), text), max_size=4),
    "created_at": dates, "updated_at": dates,
}
zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
valid_date = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 1, 1), timezones=zones)


def mostly(valid: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """A field that is usually (9 in 10) valid, so many records get past validation into cleaning and chunking."""
    return st.integers(0, 9).flatmap(lambda i: other if i == 9 else valid)


# id, headline and created_at are required: mostly valid; every other field is present or not, any value.
record = st.fixed_dictionaries(
    {
        "id": mostly(good_values["id"], hostile_value),
        "headline": mostly(st.one_of(text.filter(str.strip), st.just("Acme rises")), hostile_value),
        "created_at": mostly(valid_date.map(lambda d: d.isoformat()), st.one_of(dates, hostile_value)),
    },
    optional={f: mostly(good_values[f], hostile_value) for f in FIELDS if f not in REQUIRED},
)


@st.composite
def raw_record(draw) -> RawRecord:
    row = draw(record)
    # Mostly well-formed lines (hostile values inside); one in ten each broken bytes, a huge integer, deep nesting.
    forms = ["json", "json", "bytes", "bytes", "dict", "dict", "dict", "corrupt", "bigint", "deep"]
    form = draw(st.sampled_from(forms))
    if form == "dict":
        return RawRecord("fuzz", row)
    line = json.dumps(row, default=str)
    if form == "bigint":
        line = line[:-1] + (", " if row else "") + '"n": ' + "9" * draw(st.integers(4000, 6000)) + "}"
    elif form == "deep":
        n = draw(st.integers(500, 3000))
        line = "[" * n + "]" * n
    if form in ("bytes", "corrupt"):
        data = line.encode("utf-8", "surrogatepass")
        if form == "corrupt" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + data[at:]
        return RawRecord("fuzz", data)
    return RawRecord("fuzz", line)


@settings(max_examples=int(os.environ.get("FUZZ_BATCHES", "500")), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(batch=st.lists(raw_record(), min_size=20, max_size=20))
def test_hostile_records_are_either_valid_or_quarantined_with_a_reason(batch, tokenizer):
    spec = ChunkSpec(chunk_tokens=200, overlap=40, max_seq_length=256)
    clean = []
    for raw in batch:
        article = validate_record(raw, max_bytes=MAX_BYTES)
        if isinstance(article, Quarantined):
            assert article.reason and article.step == "validate"
            article.raw.encode("utf-8")
            continue
        assert isinstance(article, NewsArticle)
        out = clean_article(article, budget_s=60)
        if isinstance(out, Quarantined):
            assert out.reason and out.step == "clean"
            continue
        assert isinstance(out, CleanArticle) and out.headline
        for field in (out.headline, out.summary, out.body):
            assert not FORBIDDEN.search(field.replace("\n", " ")), repr(field[:200])
            field.encode("utf-8")
        clean.append(out)
    for chunked in chunk_articles(clean, tokenizer, spec, budget_s=60):
        assert isinstance(chunked, ChunkedArticle) and chunked.chunks
        for chunk in chunked.chunks:
            assert chunk.text and len(tokenizer.encode(chunk.text).ids) <= spec.max_seq_length
