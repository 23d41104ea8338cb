"""The feature pipeline end to end: real Bytewax dataflow, real packaged model, real embedded store."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from finassist.domain import NewsArticle
from finassist.feature.chunk import ChunkSpec, chunk_articles
from finassist.feature.clean import clean_article
from finassist.feature.flow import job_key, run_flow
from finassist.feature.sources.file import NewsFileSource
from finassist.store import open_store

from conftest import article, finassist, write_jsonl
from newsgen import make_articles

BAD_LINES = [
    "{this is not json",
    json.dumps({"id": 5, "headline": "no timestamp"}),
    json.dumps(article(6, headline="")),
    json.dumps(article(7, symbols="NVLT")),
    json.dumps(article(8, content="x" * 3000)),  # over max_article_bytes set below
]


def ingest(settings, *paths: Path, workers: int = 1):
    source = NewsFileSource(list(paths), batch_size=settings.batch_articles)
    return run_flow(source, settings, job_key("file", [str(p) for p in paths], settings), workers=workers)


def expected_points(rows: list[dict], tokenizer, settings) -> int:
    """What the transforms say the store must hold: latest version of each valid article, chunked."""
    latest: dict[str, NewsArticle] = {}
    for row in rows:
        a = NewsArticle.model_validate(row)
        if a.id not in latest or a.version > latest[a.id].version:
            latest[a.id] = a
    spec = ChunkSpec(settings.chunk_tokens, settings.chunk_overlap, 256)
    return sum(len(c.chunks) for c in chunk_articles([clean_article(a) for a in latest.values()], tokenizer, spec))


@pytest.fixture
def small_settings(settings):
    return settings.model_copy(update={"max_article_bytes": 2500, "batch_articles": 16})


def test_file_ingest_writes_every_chunk_and_quarantines_bad_records(tmp_path, small_settings, tokenizer):
    rows = make_articles(30, long_every=0)
    mixed = rows[:10] + BAD_LINES + rows[10:]
    path = write_jsonl(tmp_path / "news.jsonl", mixed)
    with path.open("ab") as f:
        f.write(b'{"id": 9, "headline": "caf\xe9", "created_at": "2026-09-01T00:00:00Z"}\n')  # Latin-1, not UTF-8

    stats = ingest(small_settings, path).as_dict()

    assert stats["articles_in"] == 36 and stats["articles_ok"] == 30 and stats["quarantined"] == 6
    store = open_store(small_settings)
    assert store.count() == stats["chunks"] == expected_points(rows, tokenizer, small_settings)
    assert store.count(articles=True) == 30
    reasons = [json.loads(x)["reason"] for x in small_settings.quarantine_path.read_text().splitlines()]
    assert len(reasons) == 6
    assert any("malformed JSON" in r for r in reasons) and any("UTF-8" in r for r in reasons)
    assert any("too large" in r for r in reasons)


def test_reingesting_same_file_changes_nothing(tmp_path, settings):
    path = write_jsonl(tmp_path / "news.jsonl", make_articles(12))
    first = ingest(settings, path).as_dict()
    points = open_store(settings).count()
    again = ingest(settings, path).as_dict()
    assert first["articles_written"] == 12
    assert again["articles_written"] == 0 and again["articles_unchanged"] == 12 and again["chunks"] == 0
    assert open_store(settings).count() == points


def test_update_replaces_old_chunks_and_older_version_is_ignored(tmp_path, settings, tokenizer, embedder):
    rows = make_articles(10, long_every=2)
    long_one = next(r for r in rows if len(r["content"]) > 5000)
    ingest(settings, write_jsonl(tmp_path / "v1.jsonl", rows))
    before = open_store(settings).count()

    shorter = {
        **long_one,
        "content": "<p>Correction: the figure was $3 billion.</p>",
        "updated_at": "2026-10-01T00:00:00Z",
    }
    older = {**rows[1], "content": "<p>stale</p>", "updated_at": "2026-08-01T00:00:00Z"}
    stats = ingest(settings, write_jsonl(tmp_path / "v2.jsonl", [shorter, older])).as_dict()

    assert stats["articles_written"] == 1
    store = open_store(settings)
    assert store.count() == expected_points([*rows, shorter], tokenizer, settings) < before
    hits = [
        h
        for h in store.search(embedder.encode(["Correction figure"])[0].tolist(), 50)
        if h.article_id == str(shorter["id"])
    ]
    assert len(hits) == 1 and "Correction" in hits[0].text


def test_gzip_replay_and_two_workers_give_the_same_store(tmp_path, settings, home):
    rows = make_articles(24)
    gz = tmp_path / "news.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    one = ingest(settings, gz).as_dict()
    points = open_store(settings).count()

    other = settings.model_copy(update={"home": home.parent / "other"})
    two = ingest(other, write_jsonl(tmp_path / "plain.jsonl", rows), workers=2).as_dict()
    assert one["articles_ok"] == two["articles_ok"] == 24
    assert open_store(other).count() == points == one["chunks"] == two["chunks"]


def test_retriever_finds_the_article_and_applies_filters(tmp_path, settings, embedder):
    from datetime import UTC, datetime

    from finassist.retrieval import Retriever

    rows = make_articles(20)
    rows.append(
        article(
            1,
            headline="Zephyr Mining halts output after mine flood",
            content="<p>Zephyr Mining stopped all copper output at its Andes site after flooding.</p>",
            symbols=["ZPHM"],
            created_at="2026-09-15T12:00:00Z",
            updated_at="2026-09-15T12:00:00Z",
        )
    )
    ingest(settings, write_jsonl(tmp_path / "n.jsonl", rows))
    r = Retriever(open_store(settings), embedder)

    [top, *_] = r.retrieve("copper mine flooding", k=3)
    assert top.headline.startswith("Zephyr Mining")
    many = r.retrieve("revenue growth outlook", k=8)
    assert len({h.article_id for h in many}) == len(many) == 8  # one hit per article by default
    assert all("HRBR" in h.symbols for h in r.retrieve("bank news", k=5, symbols=["hrbr"]))
    since = datetime(2026, 9, 20, tzinfo=UTC)
    assert all(h.created_at >= since for h in r.retrieve("outlook", k=10, since=since))
    assert len(r.retrieve("outlook", k=10, per_article=False)) == 10
    with pytest.raises(ValueError):
        r.retrieve("   ")


def test_cli_json_contract(tmp_path, home):
    rows = make_articles(10)  # two of them about SKYW
    path = write_jsonl(tmp_path / "n.jsonl", [*rows, "{broken"])
    out = finassist("ingest", "file", str(path), "--json")
    for key in ("articles_in", "articles_ok", "quarantined", "chunks", "seconds"):
        assert key in out
    assert (out["articles_in"], out["articles_ok"], out["quarantined"]) == (11, 10, 1)
    info = finassist("store", "info", "--json")
    assert info["points"] == out["chunks"] and info["articles"] == 10
    hits = finassist("retrieve", "Skywell satellites", "--k", "2", "--symbols", "SKYW", "--json")
    assert len(hits) == 2
    for h in hits:
        assert set(h) >= {"article_id", "headline", "score", "created_at", "symbols", "text"}
        assert h["symbols"] == ["SKYW"]
    bad = finassist("retrieve", "x", "--since", "last tuesday", check=False)
    assert bad.returncode != 0 and "not a date" in bad.stderr
    missing = finassist("ingest", "file", str(tmp_path / "nope.jsonl"), check=False)
    assert missing.returncode != 0 and "no such file" in missing.stderr
