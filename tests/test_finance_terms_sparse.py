"""Finance identifiers through the sparse leg end to end: an article writes an identifier one way, the question
another, and BM25 (qdrant-edge's encoder, the store's IDF) still finds it, because both go through
`textsearch.search_text`; with that hook made a no-op, the same questions miss."""

from __future__ import annotations

import pytest

from finassist.domain import Chunk, CleanArticle, EmbeddedArticle, NewsArticle
from finassist.retrieval import Retriever
from finassist.store import SearchMode
from finassist.store.edge import EdgeStore

NEWS = {
    "fy": "Kestrel Ridge filed annual numbers for FY2022 with higher margins.",
    "brk": "Berkshire class BRK.B holders gained after the meeting.",
    "tenk": "Copperdeep submitted its 10-K late, citing an audit.",
    "q3": "Riverment reported 3Q23 deliveries above plan.",
    "bn": "Tellwave agreed a $2.5B spectrum purchase.",
    "snake": "Document ACME_2021_ANNUAL covers the Orbla unit.",
}
FILLER = [
    f"{company} {event} in {month}."
    for company in ("Greenbarrow Foods", "Marbleleaf Homes", "Havenrock Realty", "Brookward Financial")
    for event, month in (("opened a new plant", "March"), ("raised its dividend", "June"), ("named a new CEO", "May"))
]
# (what a person types, the article it means); the first four share no token with their article without the hook.
TYPED = [
    ("2022", "fy"),
    ("BRKB", "brk"),
    ("10K", "tenk"),
    ("Q3 2023", "q3"),
    ("2.5 billion", "bn"),
    ("ANNUAL", "snake"),
]
NO_COMMON_TOKEN = {"fy", "brk", "tenk", "q3"}


def make_store(path, embedder, news: dict[str, str] = NEWS, headline=lambda text: text.split(",")[0]) -> EdgeStore:
    """`news` (id → text) and the filler, one chunk each, headlines from `headline(text)`."""
    store = EdgeStore(path)
    items = []
    for aid, text in {**news, **{f"f{i}": t for i, t in enumerate(FILLER)}}.items():
        a = NewsArticle(id=aid, headline=headline(text), created_at="2026-11-01T10:00:00Z")
        chunk = Chunk(aid, 0, text)
        items.append(EmbeddedArticle(CleanArticle(a, a.headline, "", text), (chunk,), (embedder.encode([text])[0],)))
    store.write(items)
    return store


@pytest.fixture(scope="module")
def sparse(tmp_path_factory, embedder):
    store = make_store(tmp_path_factory.mktemp("terms") / "shard", embedder)
    yield Retriever(store, embedder, SearchMode(mode="sparse"))
    store.close()


@pytest.mark.parametrize(("typed", "article"), TYPED)
def test_the_sparse_leg_finds_an_identifier_written_another_way(sparse, typed, article):
    hits = sparse.retrieve(typed, k=1)
    assert hits and hits[0].article_id == article


def test_without_the_finance_expansions_the_sparse_leg_misses_them(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr("finassist.store.sparse.search_text", lambda text, is_stopword=None: text)
    store = make_store(tmp_path / "shard", embedder)
    try:
        plain = Retriever(store, embedder, SearchMode(mode="sparse"))
        for typed, article in TYPED:
            if article in NO_COMMON_TOKEN:
                hits = plain.retrieve(typed, k=1)
                assert not hits or hits[0].article_id != article, typed
    finally:
        store.close()


PHRASES = {
    "line": "In millions | 2019 | 2018\nNet sales | 2,080 | 1,970\nCost of revenue | 1,250 | 1,180\n"
            "Gross profit | 830 | 790\nSelling expenses | 240 | 230\nResearch spending | 180 | 170\n"
            "Operating income | 410 | 390",
    "scatter": "Revenue rose, costs fell: revenue per user and cost per user moved apart.",
    "other": "Operating income | 2019 | 2018\nOperating income | 410 | 380",
}


def _phrase_store(path, embedder) -> EdgeStore:
    return make_store(path, embedder, PHRASES, lambda _: "Annual report")


def test_a_line_item_matches_as_a_phrase_and_without_word_pairs_it_does_not(tmp_path, embedder, monkeypatch):
    question = "What was the cost of revenue?"
    store = _phrase_store(tmp_path / "pairs", embedder)
    try:
        hits = Retriever(store, embedder, SearchMode(mode="sparse")).retrieve(question, k=2)
        assert hits[0].article_id == "line"
    finally:
        store.close()
    from finassist import textsearch

    monkeypatch.setattr(textsearch, "word_pairs", lambda text, is_stopword: [])
    store = _phrase_store(tmp_path / "plain", embedder)
    try:
        hits = Retriever(store, embedder, SearchMode(mode="sparse")).retrieve(question, k=2)
        assert hits[0].article_id == "scatter"  # the words one by one: the text that repeats them wins
    finally:
        store.close()
