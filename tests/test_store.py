"""The feature-store adapter, on both backends: the embedded edge shard and qdrant-client (local mode, same API as
a server)."""

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from finassist.domain import Chunk, CleanArticle, EmbeddedArticle, NewsArticle
from finassist.store import SearchFilter, SearchMode, StoreBusyError, StoreError
from finassist.store.edge import EdgeStore

DIM = 8


def vec(seed: int) -> tuple[float, ...]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return tuple((v / np.linalg.norm(v)).tolist())


def item(
    aid: str,
    n_chunks: int = 3,
    updated: str = "2026-09-01T10:00:00Z",
    symbols=("NVLT",),
    created: str = "2026-09-01T10:00:00Z",
) -> EmbeddedArticle:
    a = NewsArticle(id=aid, headline=f"H{aid}", symbols=symbols, created_at=created, updated_at=updated)
    clean = CleanArticle(a, a.headline, "", "body")
    chunks = tuple(Chunk(aid, i, f"H{aid} chunk {i} v{updated}") for i in range(n_chunks))
    return EmbeddedArticle(clean, chunks, tuple(vec(hash((aid, i)) % 10_000) for i in range(n_chunks)))


@pytest.fixture(params=["embedded", "qdrant"])
def store(request, tmp_path):
    if request.param == "embedded":
        s = EdgeStore(tmp_path / "shard")
    else:
        from qdrant_client import QdrantClient

        from finassist.store.qdrant import QdrantStore

        s = QdrantStore(QdrantClient(":memory:"), "news")
    yield s
    s.close()


def texts_of(store, aid):
    hits = store.search(vec(1), 100, None)
    return sorted(h.text for h in hits if h.article_id == aid)


def test_empty_store_answers_queries(store):
    assert store.count() == 0
    assert store.search(vec(1), 5) == []
    assert store.dim() is None


def test_latest_gives_the_newest_articles_once_each_newest_first(store):
    assert store.latest(3) == []
    stamps = {"old": "2026-08-01T10:00:00Z", "new": "2026-09-03T10:00:00Z", "mid": "2026-09-02T10:00:00Z"}
    store.write([item(aid, n, created=t, updated=t) for (aid, t), n in zip(stamps.items(), (2, 3, 1), strict=True)])
    assert [h.article_id for h in store.latest(2)] == ["new", "mid"]
    latest = store.latest(10)
    assert [h.article_id for h in latest] == ["new", "mid", "old"] and {h.chunk_index for h in latest} == {0}
    assert latest[0].headline == "Hnew" and latest[0].symbols == ["NVLT"]


def test_reingesting_same_article_keeps_point_count(store):
    r1 = store.write([item("a"), item("b", 2)])
    assert (r1.written, r1.points) == (["a", "b"], 5)
    r2 = store.write([item("a"), item("b", 2)])
    assert r2.written == [] and sorted(r2.unchanged) == ["a", "b"]
    assert store.count() == 5
    assert store.count(articles=True) == 2


def test_newer_version_replaces_all_chunks_even_when_shorter(store):
    store.write([item("a", 5)])
    r = store.write([item("a", 2, updated="2026-09-02T10:00:00Z")])
    assert r.written == ["a"]
    assert store.count() == 2
    assert all("v2026-09-02" in t for t in texts_of(store, "a"))


def test_older_version_never_overwrites_newer(store):
    store.write([item("a", 2, updated="2026-09-03T10:00:00Z")])
    r = store.write([item("a", 4, updated="2026-09-02T10:00:00Z")])
    assert r.stale == ["a"] and r.written == []
    assert store.count() == 2
    assert all("v2026-09-03" in t for t in texts_of(store, "a"))


def test_newest_version_wins_within_one_batch_in_any_order(store):
    old, new = item("a", 4, updated="2026-09-02T10:00:00Z"), item("a", 1, updated="2026-09-05T10:00:00Z")
    r = store.write([new, old])
    assert r.written == ["a"] and r.stale == ["a"]
    assert store.count() == 1
    assert store.versions(["a"]) == {"a": datetime(2026, 9, 5, 10, tzinfo=UTC).timestamp()}


def test_filters_by_symbols_and_time(store):
    store.write(
        [
            item("a", 1, symbols=("NVLT",), created="2026-09-01T10:00:00Z", updated="2026-09-01T10:00:00Z"),
            item("b", 1, symbols=("HRBR", "NVLT"), created="2026-09-10T10:00:00Z", updated="2026-09-10T10:00:00Z"),
            item("c", 1, symbols=("HRBR",), created="2026-09-20T10:00:00Z", updated="2026-09-20T10:00:00Z"),
        ]
    )

    def ids(flt):
        return sorted(h.article_id for h in store.search(vec(3), 10, flt))

    assert ids(SearchFilter(symbols=("HRBR",))) == ["b", "c"]
    assert ids(SearchFilter(since=datetime(2026, 9, 10, 10, tzinfo=UTC))) == ["b", "c"]  # since is inclusive
    assert ids(SearchFilter(until=datetime(2026, 9, 10, 10, tzinfo=UTC))) == ["a"]  # until is exclusive
    assert ids(SearchFilter(symbols=("NVLT",), since=datetime(2026, 9, 5, tzinfo=UTC))) == ["b"]


def test_hits_carry_metadata_and_scores(store):
    store.write([item("a", 2)])
    [best, *_] = store.search(vec(hash(("a", 1)) % 10_000), 2)
    assert best.article_id == "a" and best.chunk_index == 1
    assert best.score == pytest.approx(1.0, abs=1e-4)
    assert best.symbols == ["NVLT"] and best.created_at.tzinfo is not None


def test_dimension_mismatch_is_a_clear_error(store):
    store.write([item("a")])
    with pytest.raises(StoreError, match="8-d"):
        store.ensure(384)


def test_embedded_store_persists_across_reopen(tmp_path):
    s = EdgeStore(tmp_path / "shard")
    s.write([item("a", 3)])
    s.close()
    s2 = EdgeStore(tmp_path / "shard")
    assert s2.count() == 3 and s2.dim() == DIM
    s2.close()


def test_second_process_gets_a_clear_error_while_the_store_is_open(tmp_path):
    s = EdgeStore(tmp_path / "shard")
    s.write([item("a")])
    code = (
        "from finassist.store.edge import EdgeStore\n"
        f"try:\n    EdgeStore({str(tmp_path / 'shard')!r})\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.startswith(StoreBusyError.__name__)
    assert "FINASSIST_QDRANT_URL" in out
    s.close()


def test_a_server_collection_is_created_with_shards_replicas_and_indexes_from_config(tmp_path, monkeypatch):
    """FINASSIST_QDRANT_URL → qdrant-client; here its local mode (":memory:"), which speaks the server's client API but
    keeps no shard settings, so the calls themselves are recorded on their way to it."""
    from qdrant_client import QdrantClient

    from finassist.config import Settings
    from finassist.store import close_stores, open_store

    calls: dict[str, list] = {"collection": [], "index": []}
    create, index = QdrantClient.create_collection, QdrantClient.create_payload_index

    def record_collection(self, name, **kwargs):
        calls["collection"].append((name, kwargs["shard_number"], kwargs["replication_factor"]))
        return create(self, name, **kwargs)

    def record_index(self, name, field, schema, **kwargs):
        calls["index"].append(field)
        return index(self, name, field, schema, **kwargs)

    monkeypatch.setattr(QdrantClient, "create_collection", record_collection)
    monkeypatch.setattr(QdrantClient, "create_payload_index", record_index)
    settings = Settings(home=tmp_path, qdrant_url=":memory:", qdrant_shards=3, qdrant_replicas=2, collection="news")
    try:
        store = open_store(settings)
        assert store.kind == "qdrant"
        store.write([item("a1", 2)])
        store.write([item("a2", 1)])  # the collection exists now: created once
        assert calls["collection"] == [("news", 3, 2)]
        assert set(calls["index"]) == {"article_id", "symbols", "created_at", "updated_at", "chunk_index"}
        assert store.count() == 3 and {h.article_id for h in store.search(vec(1), 10)} == {"a1", "a2"}
    finally:
        close_stores()


# --- the sparse (BM25) leg and hybrid search -------------------------------------------------------------------
def text_item(aid: str, texts: list[str], updated: str = "2026-09-01T10:00:00Z") -> EmbeddedArticle:
    a = NewsArticle(id=aid, headline=texts[0], symbols=("NVLT",), created_at="2026-09-01T10:00:00Z", updated_at=updated)
    chunks = tuple(Chunk(aid, i, t) for i, t in enumerate(texts))
    return EmbeddedArticle(CleanArticle(a, a.headline, "", "body"), chunks, tuple(vec(i) for i in range(len(texts))))


NEWS = {
    "a": ["Voltrix raises guidance after record quarter"],
    "b": ["Harborline cuts 400 jobs in restructuring"],
    "c": ["Oil prices slide as inventories build"],
}
SPARSE = SearchMode(mode="sparse")


def test_sparse_leg_finds_the_exact_term_whatever_the_vector(store):
    store.write([text_item(aid, texts) for aid, texts in NEWS.items()])
    [hit] = store.search(None, 5, text="Harborline jobs", how=SPARSE)
    assert hit.article_id == "b" and hit.score > 0
    assert store.search(None, 5, text="the and of", how=SPARSE) == []  # stopwords only: nothing to match


@pytest.mark.parametrize("fusion", ["mix", "rrf", "dbsf"])
def test_hybrid_ranks_the_exact_term_first_when_the_dense_leg_points_elsewhere(store, fusion):
    store.write([text_item(aid, texts) for aid, texts in NEWS.items()])
    how = SearchMode(mode="hybrid", fusion=fusion, dense_weight=0.3)
    hits = store.search(vec(0), 3, text="Harborline jobs", how=how)  # vec(0) is every article's chunk-0 vector
    assert hits[0].article_id == "b"
    assert all(0.0 <= h.score <= 1.0 + 1e-6 for h in hits)
    # dense alone cannot tell them apart: all three tie on the vector
    assert {h.article_id for h in store.search(vec(0), 3, text="Harborline jobs")} == {"a", "b", "c"}


def test_mixed_scores_do_not_depend_on_how_deep_the_legs_were_fetched(store):
    """Each leg returns its top `limit`; a chunk only one leg returned gets the other leg's exact score (one more
    query restricted to those points), not a guess, so a hit scores the same whether 1 or 10 were asked for."""
    items = []
    for i, (aid, texts) in enumerate({**NEWS, "d": ["Keswick opens a plant"], "e": ["Harborline wins a bid"]}.items()):
        one = text_item(aid, texts)
        items.append(EmbeddedArticle(one.clean, one.chunks, (vec(50 + i),)))
    store.write(items)
    how = SearchMode(mode="hybrid", fusion="mix", dense_weight=0.5)
    query = vec(52)  # article c's own vector: the dense leg's favourite; the words point to b and e
    deep = {h.article_id: h.score for h in store.search(query, 10, text="Harborline jobs", how=how)}
    for limit in (1, 2, 3):
        for hit in store.search(query, limit, text="Harborline jobs", how=how):
            assert hit.score == pytest.approx(deep[hit.article_id], abs=1e-5), (limit, hit.article_id)
    assert store.search(query, 1, text="Harborline jobs", how=SearchMode(mode="dense"))[0].article_id == "c"
    assert store.search(query, 1, text="Harborline jobs", how=SPARSE)[0].article_id == "b"


def test_a_chunk_deleted_between_scoring_and_reading_is_left_out_of_the_mix(store, monkeypatch):
    """The mix scores both legs without payloads and reads payloads for the winners only; an update that deletes a
    scored chunk in between (a shorter newer version) drops that hit instead of failing the search."""
    store.write([text_item("a", ["Harborline jobs rise", "Harborline hires in Ohio"]), text_item("b", ["Harborline"])])
    score_both = store._score_both

    def then_shorten_a(*args):
        scores = score_both(*args)
        store.write([text_item("a", ["Harborline jobs rise"], updated="2026-09-02T10:00:00Z")])
        return scores

    monkeypatch.setattr(store, "_score_both", then_shorten_a)
    hits = store.search(vec(0), 5, text="Harborline jobs", how=SearchMode(mode="hybrid"))
    assert sorted((h.article_id, h.chunk_index) for h in hits) == [("a", 0), ("b", 0)]


def test_hybrid_with_no_indexable_term_is_the_dense_search(store):
    store.write([text_item(aid, texts) for aid, texts in NEWS.items()])
    hybrid = store.search(vec(0), 3, text="the of", how=SearchMode(mode="hybrid"))
    assert [h.article_id for h in hybrid] == [h.article_id for h in store.search(vec(0), 3)]


def test_filters_apply_to_both_legs(store):
    store.write([text_item(aid, texts) for aid, texts in NEWS.items()])
    flt = SearchFilter(symbols=("NONE",))
    assert store.search(vec(0), 3, flt, text="Harborline", how=SearchMode(mode="hybrid")) == []
    assert store.search(vec(0), 3, flt, text="Harborline", how=SearchMode(mode="hybrid", fusion="rrf")) == []


def test_a_newer_version_replaces_the_sparse_vectors_too(store):
    store.write([text_item("a", ["Voltrix signs supply deal with Keswick", "Keswick shares jump"])])
    store.write([text_item("a", ["Voltrix supply deal collapses"], updated="2026-09-02T10:00:00Z")])
    assert store.search(None, 5, text="Keswick", how=SPARSE) == []  # neither old chunk is found by its words
    [hit] = store.search(None, 5, text="collapses", how=SPARSE)
    assert hit.article_id == "a" and store.count() == 1
    # the same version again is a no-op for both legs
    r = store.write([text_item("a", ["Voltrix supply deal collapses"], updated="2026-09-02T10:00:00Z")])
    assert r.unchanged == ["a"] and len(store.search(None, 5, text="collapses", how=SPARSE)) == 1


# --- stores written before hybrid search -----------------------------------------------------------------------
def _legacy_edge(path) -> None:
    import qdrant_edge as qe

    shard = qe.EdgeShard.create(
        str(path), qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine))
    )
    _write_legacy(
        lambda points: shard.update(
            qe.UpdateOperation.upsert_points([qe.Point(id=pid, vector=list(v), payload=p) for pid, v, p in points])
        )
    )
    shard.flush()
    shard.close()


def _write_legacy(upsert) -> None:
    from finassist.domain import point_id
    from finassist.store.base import chunk_payload

    points = []
    for aid, texts in NEWS.items():
        it = text_item(aid, texts)
        points += [
            (point_id(aid, c.index), v, chunk_payload(it, c.index, c.text))
            for c, v in zip(it.chunks, it.vectors, strict=True)
        ]
    upsert(points)


def _bm25_v1(text: str):
    """The first BM25 encoding (vector "bm25"): no number tokens or word pairs (these texts name no finance
    identifier, so v1's identifier spellings add nothing either)."""
    import qdrant_edge as qe

    return qe.Bm25(qe.Bm25Config()).embed_document(text)


def _bm25_v1_edge(path) -> None:
    import qdrant_edge as qe

    shard = qe.EdgeShard.create(str(path), qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)},
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    ))

    def upsert(points):
        shard.update(qe.UpdateOperation.upsert_points([
            qe.Point(id=pid, vector={"dense": list(v), "bm25": qe.SparseVector(indices=list(b.indices),
                                                                               values=list(b.values))}, payload=p)
            for pid, v, p in points for b in [_bm25_v1(p["text"])]
        ]))

    _write_legacy(upsert)
    shard.flush()
    shard.close()


def _bm25_v1_qdrant(client) -> None:
    from qdrant_client import models

    client.create_collection(
        "news", vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    _write_legacy(lambda points: client.upsert("news", [
        models.PointStruct(id=pid, vector={"dense": list(v), "bm25": models.SparseVector(
            indices=list(b.indices), values=list(b.values))}, payload=p)
        for pid, v, p in points for b in [_bm25_v1(p["text"])]
    ]))


@pytest.fixture(params=["embedded", "qdrant", "embedded-bm25v1", "qdrant-bm25v1"])
def legacy_store(request, tmp_path):
    """A store written before hybrid search (one unnamed dense vector), or with the first BM25 text encoding."""
    if request.param == "embedded-bm25v1":
        _bm25_v1_edge(tmp_path / "shard")
        s = EdgeStore(tmp_path / "shard")
    elif request.param == "qdrant-bm25v1":
        from qdrant_client import QdrantClient

        from finassist.store.qdrant import QdrantStore

        client = QdrantClient(":memory:")
        _bm25_v1_qdrant(client)
        s = QdrantStore(client, "news")
    elif request.param == "embedded":
        _legacy_edge(tmp_path / "shard")
        s = EdgeStore(tmp_path / "shard")
    else:
        from qdrant_client import QdrantClient, models

        from finassist.store.qdrant import QdrantStore

        client = QdrantClient(":memory:")
        client.create_collection("news", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
        _write_legacy(
            lambda points: client.upsert(
                "news", [models.PointStruct(id=pid, vector=list(v), payload=p) for pid, v, p in points]
            )
        )
        s = QdrantStore(client, "news")
    yield s
    s.close()


def test_a_dense_only_store_is_detected_and_neither_searched_nor_written(legacy_store):
    problem = legacy_store.schema_problem()
    assert problem and "finassist store reindex" in problem and "finassist store reset --yes" in problem
    with pytest.raises(StoreError, match="store reindex"):
        legacy_store.search(vec(0), 3)
    with pytest.raises(StoreError, match="store reindex"):
        legacy_store.write([text_item("d", ["Keswick opens a plant"])])
    assert legacy_store.count() == 3  # nothing was added


def test_reindex_rebuilds_a_dense_only_store_from_its_payloads(legacy_store):
    assert legacy_store.reindex() == 3
    assert legacy_store.schema_problem() is None and legacy_store.count() == 3 and legacy_store.dim() == DIM
    [hit] = legacy_store.search(None, 5, text="Harborline", how=SPARSE)
    assert hit.article_id == "b" and hit.text == NEWS["b"][0]
    dense = legacy_store.search(vec(0), 3)
    assert dense[0].score == pytest.approx(1.0, abs=1e-4)  # the stored vectors came along, not re-embedded
    legacy_store.write([text_item("d", ["Keswick opens a plant"])])
    assert legacy_store.count() == 4 and legacy_store.reindex() == 0  # current schema: nothing to do


def test_store_reindex_command_upgrades_a_dense_only_embedded_store(home):
    from conftest import finassist

    (home / "store").mkdir(parents=True)
    _legacy_edge(home / "store" / "financial_news")
    assert "reindex" in finassist("store", "info", "--json")["schema"]
    out = finassist("store", "reindex", "--json")
    assert (out["reindexed"], out["points"]) == (3, 3)
    assert finassist("store", "info", "--json")["schema"] == "dense+bm25v2"
    assert finassist("store", "reindex", "--json")["reindexed"] == 0


def test_make_run_rebuilds_a_store_written_with_the_first_bm25_encoding(home):
    from finassist.cli.quickstart import upgrade_store
    from finassist.config import Settings
    from finassist.store import close_stores, open_store

    (home / "store").mkdir(parents=True)
    _bm25_v1_edge(home / "store" / "financial_news")
    settings = Settings(home=home)
    assert upgrade_store(settings) == 3 and upgrade_store(settings) == 0
    try:
        [hit] = open_store(settings).search(None, 5, text="400 jobs at Harborline", how=SPARSE)
        assert hit.article_id == "b"
    finally:
        close_stores()


def test_a_server_search_makes_one_request_once_the_collection_is_known(monkeypatch):
    from qdrant_client import QdrantClient

    from finassist.store.qdrant import QdrantStore

    client = QdrantClient(":memory:")
    writer = QdrantStore(client, "news")
    writer.write([text_item(aid, texts) for aid, texts in NEWS.items()])
    reader = QdrantStore(client, "news")  # a serving process: it never writes
    reader.search(vec(0), 3, text="Harborline", how=SearchMode(mode="hybrid"))
    calls: list[str] = []
    for name in ("collection_exists", "get_collection"):
        original = getattr(QdrantClient, name)
        monkeypatch.setattr(
            QdrantClient, name, lambda self, *a, _o=original, _n=name, **k: calls.append(_n) or _o(self, *a, **k)
        )
    for fusion in ("mix", "rrf"):
        assert reader.search(vec(0), 3, text="Harborline", how=SearchMode(mode="hybrid", fusion=fusion))
    assert calls == []


def test_optimize_keeps_both_legs_searchable(store):
    store.write([text_item(aid, texts) for aid, texts in NEWS.items()])
    assert isinstance(store.optimize(), bool)  # the server optimises by itself: False there
    [hit] = store.search(None, 5, text="Harborline", how=SPARSE)
    assert hit.article_id == "b" and len(store.search(vec(0), 3)) == 3
    store.write([text_item("d", ["Keswick opens a plant"])])  # still writable after
    assert store.count() == 4
