"""How a question picks its news before the prompt: the tickers it names become a filter (cashtags, known tickers,
company names), and fresher stories outrank slightly more similar old ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from finassist.domain import Chunk, CleanArticle, EmbeddedArticle, Hit, NewsArticle
from finassist.retrieval import Retriever, prefer_recent
from finassist.store.edge import EdgeStore
from finassist.symbols import builtin_aliases, load_aliases, symbols_in

ALIASES = load_aliases()


# --- tickers named in a question -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What happened to $TSLA today?", ["TSLA"]),
        ("is $tsla up?", ["TSLA"]),
        ("$BRK.B vs $JPM.", ["BRK.B", "JPM"]),
        ("Why is $ZEPHUSD falling?", ["ZEPHUSD"]),
        ("Is $dogeusd a crypto pair?", ["DOGEUSD"]),  # longer than a stock ticker, and not a known one
        ("News on $ACME, a ticker we have never heard of", ["ACME"]),
        ("Did it cost $5 billion or US$4B?", []),
    ],
)
def test_cashtags_name_any_ticker(question, expected):
    assert symbols_in(question, ALIASES) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Is VLTX a battery maker?", ["VLTX"]),
        ("AMD or INTC for AI chips?", ["AMD", "INTC"]),
        ("What did BTCUSD do overnight?", ["BTCUSD"]),
        ("Did the CEO say AI demand in the US will grow? FAQ, EPS, IPO, GDP.", []),
        ("Is Vltx up?", []),  # bare tickers count in capitals only; names are matched case-insensitively
    ],
)
def test_bare_words_count_only_when_they_are_known_tickers(question, expected):
    assert symbols_in(question, ALIASES) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is Tesla's margin?", ["TSLA"]),
        ("what is tesla doing", ["TSLA"]),
        ("TESLA AND NVIDIA EARNINGS", ["TSLA", "NVDA"]),
        ("Any news from kestrel ridge?", ["KSTR"]),
        ("Berkshire Hathaway's cash pile", ["BRK.B"]),
        ("Does artificial intelligence help Intelligent Systems?", []),  # "Intel" only as a whole word
        ("Teslas everywhere", []),
    ],
)
def test_company_names_map_to_their_ticker(question, expected):
    assert symbols_in(question, ALIASES) == expected


def test_tickers_come_in_order_of_appearance_without_duplicates():
    question = "Compare Nvidia, $AAPL and MSFT; is Tesla ($TSLA, TSLA) or Google/Alphabet better than nvidia?"
    assert symbols_in(question, ALIASES) == ["NVDA", "AAPL", "MSFT", "TSLA", "GOOGL"]


def test_builtin_aliases_are_valid_name_ticker_pairs():
    aliases = builtin_aliases()
    assert aliases["Tesla"] == "TSLA"
    assert not any(name.startswith("_") for name in aliases)
    assert len(aliases) > 30


def test_an_extra_alias_file_extends_and_overrides_the_builtins(tmp_path):
    extra = tmp_path / "aliases.json"
    extra.write_text(json.dumps({"_comment": "ours", "Acme Rockets": "acmr", "Acme Corp.": "ACME", "Zephyr": "ZPHR"}))
    aliases = load_aliases(extra)
    assert symbols_in("How are acme rockets and Tesla doing?", aliases) == ["ACMR", "TSLA"]
    assert symbols_in("Is Acme Corp. hiring?", aliases) == ["ACME"]  # a name that ends in punctuation
    assert symbols_in("Zephyr rallies", aliases) == ["ZPHR"]
    assert symbols_in("Is ACMR cheap?", aliases) == ["ACMR"]  # its ticker is now a known bare word
    assert "_comment" not in aliases
    assert load_aliases() == ALIASES  # the builtins are not changed for the next caller


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"Acme": 5}',
        '{"Acme": "not a ticker"}',
        '{"": "ACME"}',  # an empty name would match every question
        '{"  ": "ACME"}',
    ],
)
def test_a_bad_alias_file_is_a_clear_error(tmp_path, content):
    extra = tmp_path / "aliases.json"
    extra.write_text(content)
    with pytest.raises(ValueError, match=str(extra)):
        load_aliases(extra)


def test_a_missing_alias_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unreadable symbol aliases"):
        load_aliases(tmp_path / "missing.json")


# --- fresher news first ----------------------------------------------------------------------------

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def scored(article_id: str, score: float, hours_old: float, now: datetime = NOW) -> Hit:
    created = now - timedelta(hours=hours_old)
    return Hit(
        article_id=article_id,
        headline=article_id,
        score=score,
        created_at=created,
        updated_at=created,
        symbols=["VLTX"],
        text="",
        chunk_index=0,
    )


def test_a_fresh_story_overtakes_a_slightly_more_similar_old_one():
    old, fresh = scored("old", 0.80, hours_old=240), scored("fresh", 0.78, hours_old=1)
    ranked = prefer_recent([old, fresh], NOW, weight=0.1, half_life_hours=72)
    assert [h.article_id for h in ranked] == ["fresh", "old"]
    assert [h.score for h in ranked] == [0.78, 0.80]  # scores stay the similarity


def test_a_much_more_similar_story_still_wins_over_a_fresh_one():
    old, fresh = scored("old", 0.90, hours_old=240), scored("fresh", 0.70, hours_old=0)
    ranked = prefer_recent([fresh, old], NOW, weight=0.1, half_life_hours=72)
    assert [h.article_id for h in ranked] == ["old", "fresh"]


def test_the_bonus_halves_every_half_life():
    # At one half-life a story gets weight/2: 0.86 + 0.05 = 0.91 beats 0.80 + 0.10; 0.84 + 0.05 does not.
    now_story = scored("now", 0.80, hours_old=0)
    ranked = prefer_recent([now_story, scored("aged", 0.86, hours_old=72)], NOW, 0.1, 72)
    assert ranked[0].article_id == "aged"
    ranked = prefer_recent([now_story, scored("aged", 0.84, hours_old=72)], NOW, 0.1, 72)
    assert ranked[0].article_id == "now"


def test_weight_zero_keeps_the_order_given():
    hits = [scored("b", 0.5, 500), scored("a", 0.9, 0), scored("c", 0.7, 1)]
    ranked = prefer_recent(hits, NOW, weight=0.0, half_life_hours=72)
    assert ranked == hits and ranked is not hits


def test_future_dated_and_naive_timestamps_do_not_break_the_ranking():
    future = scored("future", 0.80, hours_old=-48)  # a clock-skewed feed: no more than the full bonus
    naive = scored("naive", 0.79, hours_old=1, now=NOW.replace(tzinfo=None))
    ranked = prefer_recent([naive, future], NOW.replace(tzinfo=None), weight=0.1, half_life_hours=72)
    assert [h.article_id for h in ranked] == ["future", "naive"]


def test_a_half_life_that_is_not_positive_is_an_error():
    with pytest.raises(ValueError, match="half_life_hours"):
        prefer_recent([scored("a", 0.5, 1)], NOW, weight=0.1, half_life_hours=0)


@pytest.mark.slow
def test_retrieve_recent_prefers_fresh_news_among_similar_articles(tmp_path, embedder):
    now = datetime.now(UTC)
    stories = {
        "old": ("Voltrix recalls batteries", "Voltrix recalls 40,000 batteries over fire risk.", 20 * 24),
        "fresh": ("Voltrix battery recall widens", "Voltrix widens its battery recall to 60,000 units.", 1),
        "other": ("Brookward opens a bakery", "Brookward bakes bread in a new shop downtown.", 0),
    }
    items = []
    for aid, (headline, body, hours_old) in stories.items():
        created = now - timedelta(hours=hours_old)
        article = NewsArticle(id=aid, headline=headline, symbols=["VLTX"], created_at=created)
        text = f"{headline}\n{body}"
        vector = tuple(embedder.encode([text])[0].tolist())
        items.append(EmbeddedArticle(CleanArticle(article, headline, "", body), (Chunk(aid, 0, text),), (vector,)))
    store = EdgeStore(tmp_path / "shard")
    try:
        store.write(items)
        retriever = Retriever(store, embedder)
        query = "Voltrix recalls batteries"
        by_similarity = retriever.retrieve_recent(query, k=2, weight=0.0, half_life_hours=72)
        assert [h.article_id for h in by_similarity] == ["old", "fresh"]
        recent = retriever.retrieve_recent(query, k=2, weight=0.5, half_life_hours=72)
        assert [h.article_id for h in recent] == ["fresh", "old"]
        assert [h.score for h in recent] == [by_similarity[1].score, by_similarity[0].score]
        assert [h.article_id for h in retriever.retrieve_recent(query, k=1, weight=0.5, half_life_hours=72)] == [
            "fresh"
        ]
        assert retriever.retrieve_recent(query, k=3, weight=0.5, half_life_hours=72, symbols=["BKWD"]) == []
    finally:
        store.close()
