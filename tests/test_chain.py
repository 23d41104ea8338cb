"""The RAG chain with the real retriever, store and packaged LLM: filters, fallbacks, trimming, early close."""

from __future__ import annotations

import pytest

from finassist.config import Settings
from finassist.inference.chain import Answer, AskInput, RAGChain, RunRecord
from finassist.retrieval import Retriever
from finassist.store import open_store
from finassist.symbols import load_aliases

from conftest import article, ingest_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain_parts(tmp_path_factory, llm, embedder):
    home = tmp_path_factory.mktemp("chain") / "home"
    settings = Settings(home=home, max_new_tokens=6, tracing=False)
    rows = [
        article(
            1,
            headline="Riverment Motors Recalls 40,000 Sedans",
            content="<p>Riverment Motors recalled 40,000 sedans over a brake-sensor fault.</p>",
            symbols=["RVMT"],
            created_at="2026-11-01T10:00:00Z",
            updated_at="2026-11-01T10:00:00Z",
        ),
        article(
            2,
            headline="Greenbarrow Foods Raises Prices On Frozen Pizza",
            content="<p>Greenbarrow Foods will raise frozen pizza prices by 6% in January.</p>",
            symbols=["GRNB"],
        ),
    ]
    ingest_rows(settings, rows, home.parent / "news.jsonl")
    return settings, Retriever(open_store(settings), embedder)


def make_chain(chain_parts, llm, **overrides) -> tuple[RAGChain, list[RunRecord]]:
    settings, retriever = chain_parts
    records: list[RunRecord] = []
    chain = RAGChain(retriever, llm, settings.model_copy(update=overrides), load_aliases(), on_finish=records.append)
    return chain, records


def test_a_named_company_filters_the_news_and_the_answer_cites_it(chain_parts, llm):
    chain, records = make_chain(chain_parts, llm)
    answer = chain.ask(AskInput(question="Why is Riverment recalling cars?"))
    assert answer.symbols == ["RVMT"] and [s.article_id for s in answer.sources] == ["1"]
    assert records[0].steps[0].name == "retrieve" and [s.name for s in records[0].steps] == [
        "retrieve",
        "prompt",
        "generate",
    ]
    assert all(s.end_ns >= s.start_ns for s in records[0].steps) and records[0].error is None


def test_a_detected_ticker_without_news_falls_back_to_all_news_and_says_so(chain_parts, llm):
    chain, _ = make_chain(chain_parts, llm)
    answer = chain.ask(AskInput(question="What is new at $ZZZZ and in frozen pizza?"))
    assert answer.symbols == [] and answer.sources
    assert any("no news tagged ZZZZ" in note for note in answer.notes)


def test_explicit_symbols_win_and_an_empty_list_means_no_filter(chain_parts, llm):
    chain, _ = make_chain(chain_parts, llm)
    given = chain.ask(AskInput(question="Why is Riverment recalling cars?", symbols=["GRNB"]))
    assert given.symbols == ["GRNB"] and [s.article_id for s in given.sources] == ["2"]
    none = chain.ask(AskInput(question="Why is Riverment recalling cars?", symbols=[], k=2))
    assert none.symbols == [] and len(none.sources) == 2
    explicit_unknown = chain.ask(AskInput(question="anything", symbols=["ZZZZ"]))
    assert explicit_unknown.sources == []  # an explicit filter is obeyed, even when it matches nothing


def test_news_that_does_not_fit_the_context_is_trimmed_lowest_rank_first(chain_parts, llm):
    chain, records = make_chain(chain_parts, llm, llm_context_tokens=None)
    full = chain.ask(AskInput(question="Riverment or Greenbarrow?", symbols=[], k=2))
    prompt_tokens = records[-1].prompt.tokens
    # A context window that holds the prompt minus some of the second article: that article goes, the first stays.
    small = chain.llm.info.context_window
    object.__setattr__(chain.llm.info, "context_window", prompt_tokens + chain.settings.max_new_tokens - 10)
    try:
        trimmed = chain.ask(AskInput(question="Riverment or Greenbarrow?", symbols=[], k=2))
    finally:
        object.__setattr__(chain.llm.info, "context_window", small)
    assert [s.article_id for s in trimmed.sources] == [s.article_id for s in full.sources][:1]
    assert any("trimmed to fit" in note for note in trimmed.notes)


def test_closing_the_stream_early_stops_generation_and_records_it(chain_parts, llm):
    chain, records = make_chain(chain_parts, llm, max_new_tokens=300)
    stream = chain.stream(AskInput(question="Tell me everything about Riverment Motors."))
    assert isinstance(next(stream), str)
    stream.close()
    assert not llm._lock.locked()  # the model is free for the next request at once
    assert records[0].error == "client gone" and records[0].answer is None
    assert isinstance(chain.ask(AskInput(question="Greenbarrow?", max_new_tokens=2)), Answer)
