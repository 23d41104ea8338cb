"""No record can stop the pipeline: records that used to raise out of validation (and so stopped ingestion for good,
each rerun crashing on the same line) are quarantined with their reason, and the good records around them land."""

from __future__ import annotations

import json
from functools import partial

import pytest

from finassist.domain import CleanArticle, NewsArticle, Quarantined, RawRecord
from finassist.feature.clean import clean_article, clean_html, limit_nesting, normalise_text
from finassist.feature.guard import isolate, isolate_batch
from finassist.feature.validate import validate_record
from finassist.store import open_store

from conftest import article, ingest_rows

GOOD = {"id": "x", "headline": "H", "created_at": "2026-10-01T10:00:00Z"}

POISON = {
    "symbols as a number": json.dumps({**GOOD, "symbols": 5}),
    "symbols as a float": json.dumps({**GOOD, "symbols": 5.5}),
    "symbols as a bool": json.dumps({**GOOD, "symbols": True}),
    "year 1 east of UTC": json.dumps({**GOOD, "created_at": "0001-01-01T00:00:00+14:00"}),
    "year 9999 west of UTC": json.dumps({**GOOD, "created_at": "9999-12-31T23:59:59-14:00"}),
    "a 5,000-digit integer": json.dumps(GOOD)[:-1] + ', "n": ' + "7" * 5000 + "}",
    "JSON nested 1,000 deep": json.dumps(GOOD)[:-1] + ', "deep": ' + "[" * 1000 + "]" * 1000 + "}",
    "an unpaired surrogate in the id": json.dumps({**GOOD, "id": "a\ud800b"}),
}


@pytest.mark.parametrize("line", POISON.values(), ids=POISON.keys())
def test_poison_record_is_quarantined_with_a_reason(line):
    out = validate_record(RawRecord("news.jsonl:7", line), max_bytes=2_000_000)
    assert isinstance(out, Quarantined)
    assert out.step == "validate" and out.reason and out.origin == "news.jsonl:7"
    out.raw.encode("utf-8")  # the excerpt can be written to the quarantine file


def test_a_dict_payload_nested_too_deeply_is_quarantined():
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    out = validate_record(RawRecord("stream", {**GOOD, "extra": deep}), max_bytes=2_000_000)
    assert isinstance(out, NewsArticle | Quarantined)  # extra fields are ignored; either way nothing escapes
    assert isinstance(validate_record(RawRecord("stream", {**GOOD, "symbols": deep}), 2_000_000), Quarantined)


def test_surrogates_in_text_fields_become_replacement_characters():
    a = NewsArticle.model_validate({**GOOD, "headline": "Acme \ud83d rises", "content": "x\udfffy"})
    assert a.headline == "Acme \ufffd rises" and a.content == "x\ufffdy"


def test_bidi_override_and_isolate_characters_are_stripped():
    text = "".join(f"a{chr(c)}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]) + "b"
    assert normalise_text(text) == "a" * 9 + "b"
    assert normalise_text("Acme\u202e evil\u2066 Corp") == "Acme evil Corp"


def test_a_step_that_raises_on_one_record_quarantines_only_that_record():
    def upper_or_fail(items: list[str]) -> list[str]:
        if "bad" in items:
            raise RuntimeError("cannot handle bad")
        return [s.upper() for s in items]

    out = isolate_batch("chunk", upper_or_fail)(["a", "bad", "c"])
    assert out[0] == "A" and out[2] == "C"
    assert isinstance(out[1], Quarantined) and out[1].step == "chunk"
    assert out[1].reason == "RuntimeError: cannot handle bad"


def test_a_batch_step_failing_on_every_record_is_raised_not_quarantined():
    # A broken model is not bad data: quarantining the whole batch would lose good news.
    def broken(items: list[str]) -> list[str]:
        raise MemoryError("no memory")

    with pytest.raises(MemoryError):
        isolate_batch("embed", broken)(["a", "b"])


def test_a_record_over_its_processing_budget_is_quarantined_with_the_reason():
    a = NewsArticle.model_validate({**GOOD, "content": "<p>Revenue rose.</p>" * 20_000})
    out = isolate("clean", partial(clean_article, budget_s=1e-9))(a)
    assert isinstance(out, Quarantined) and out.step == "clean" and out.origin == "article:x"
    assert "processing budget exceeded" in out.reason
    assert isinstance(clean_article(a, budget_s=60), CleanArticle)


def test_deep_nesting_is_flattened_but_keeps_its_text():
    shallow = "<div><p>a</p><ul><li>b<li>c</ul></div>"
    assert limit_nesting(shallow) is shallow
    deep = "<div>x" * 5000
    capped = limit_nesting(deep, max_depth=100)
    assert capped.count("<div>") == 100 and capped.count("x") == 5000
    assert clean_html(deep).replace("\n", "") == "x" * 5000
    # unclosed paragraphs and list items do not count as nesting
    assert limit_nesting("<p>a" * 1000, max_depth=10) == "<p>a" * 1000


def test_poison_records_do_not_stop_ingestion_and_reruns_list_them_once(tmp_path, settings):
    rows = [article(1), *POISON.values(), article(2), article(3, content="<div>x" * 30_000)]
    path = tmp_path / "news.jsonl"

    stats = ingest_rows(settings, rows, path).as_dict()

    assert stats["articles_ok"] == 3 and stats["quarantined"] == len(POISON)
    assert open_store(settings).count(articles=True) == 3
    entries = [json.loads(x) for x in settings.quarantine_path.read_text().splitlines()]
    assert len(entries) == len(POISON) and all(e["reason"] for e in entries)

    again = ingest_rows(settings, rows, path).as_dict()
    assert again["quarantined"] == len(POISON) and again["articles_unchanged"] == 3
    assert len(settings.quarantine_path.read_text().splitlines()) == len(POISON)  # not listed twice
