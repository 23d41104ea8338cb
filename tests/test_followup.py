"""Follow-up questions retrieve with the conversation: over the sample news, "How big is that deal and how will
they pay for it?" after a question about Brookward's acquisition finds Brookward news, not whatever news best
matches "deal" and "pay" (it pulled Tellwave and Havenrock stories before)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from finassist.config import Settings
from finassist.inference.chain import AskInput, RAGChain, Turn
from finassist.retrieval import Retriever, retrieve_for_question
from finassist.store import open_store
from finassist.symbols import load_aliases

from conftest import ingest_rows

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_news.jsonl"
FIRST = "Which company is Brookward buying?"
ANSWER = "Brookward agreed to acquire Saltmarsh Trust Company [1]."
FOLLOW_UP = "How big is that deal and how will they pay for it?"
ACQUISITION = "41882564"  # "Brookward To Acquire Saltmarsh Trust Company For $7.11 Billion In Cash-And-Stock Deal"


@pytest.fixture(scope="module")
def parts(tmp_path_factory, embedder):
    home = tmp_path_factory.mktemp("followup") / "home"
    settings = Settings(home=home, max_new_tokens=4, tracing=False)
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    # Brookward's news and the companies whose news the follow-up pulled without the conversation, plus Celquora.
    rows = [r for r in rows if {"BKWD", "TLWV", "HVNR", "CELQ"} & set(r.get("symbols") or [])]
    ingest_rows(settings, rows, home.parent / "news.jsonl")
    return settings, Retriever(open_store(settings), embedder)


def ask(parts, question, history=(), now=None):
    settings, retriever = parts
    return retrieve_for_question(
        retriever,
        question,
        4,
        settings.recency_weight,
        settings.recency_half_life_hours,
        load_aliases(),
        history=list(history),
        now=now,
    )


def test_the_first_question_finds_the_acquisition(parts):
    first = ask(parts, FIRST)
    assert first.symbols == ["BKWD"]
    assert ACQUISITION in [h.article_id for h in first.hits]


def test_a_follow_up_carries_the_earlier_questions_company_as_the_filter(parts):
    second = ask(parts, FOLLOW_UP, history=[("user", FIRST)])
    assert second.symbols == ["BKWD"]
    assert second.hits and all("BKWD" in h.symbols for h in second.hits)
    assert any("follow-up" in n for n in second.notes)


def test_a_follow_up_carries_the_subject_of_the_exchange(parts):
    second = ask(parts, FOLLOW_UP, history=[("user", FIRST), ("assistant", ANSWER)])
    assert second.symbols == ["BKWD"]
    assert second.hits[0].article_id == ACQUISITION


def test_without_the_conversation_the_follow_up_finds_other_companies(parts):
    # What the fix is for: the last question alone names no company, so other companies' deals come back.
    alone = ask(parts, FOLLOW_UP)
    assert alone.symbols == []
    assert not all("BKWD" in h.symbols for h in alone.hits)


def test_a_new_question_with_its_own_company_is_not_dragged_back(parts):
    other = ask(parts, "What is new at Celquora?", history=[("user", FIRST), ("assistant", ANSWER)])
    assert other.symbols == ["CELQ"] and all("CELQ" in h.symbols for h in other.hits)
    assert other.notes == []


def test_the_chat_chain_carries_the_conversation_into_retrieval(parts, llm):
    settings, retriever = parts
    chain = RAGChain(retriever, llm, settings, load_aliases())
    history = [
        Turn(role="user", content=FIRST),
        Turn(role="assistant", content=ANSWER),
    ]
    answer = chain.ask(AskInput(question=FOLLOW_UP, history=history, k=4))
    assert answer.symbols == ["BKWD"]
    assert answer.sources and all("BKWD" in s.symbols for s in answer.sources)
    assert ACQUISITION in [s.article_id for s in answer.sources]


def test_a_calendar_period_in_the_question_narrows_the_news_to_its_dates(parts):
    found = ask(parts, "What did Brookward announce yesterday?", now=datetime(2026, 10, 15, 12, tzinfo=UTC))
    assert found.hits and {h.created_at.date() for h in found.hits} == {date(2026, 10, 14)}
    assert all("BKWD" in h.symbols for h in found.hits)
    assert any("the question's period" in n for n in found.notes)


def test_a_period_without_news_falls_back_to_all_dates_and_says_so(parts):
    found = ask(parts, "What did Brookward announce yesterday?", now=datetime(2027, 3, 1, tzinfo=UTC))
    assert found.hits and all("BKWD" in h.symbols for h in found.hits)
    assert "no news in the question's period; searched all dates" in found.notes
