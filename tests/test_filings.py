"""Filing-like documents: the title's company, fiscal year and form are stored with every chunk, and a question that
names a year or a company ranks that filing first — its other years' pages read almost the same."""

from __future__ import annotations

import pytest

from finassist.domain import Chunk, CleanArticle, EmbeddedArticle, Filing, NewsArticle
from finassist.retrieval import Retriever, filing_bonus, retrieve_for_question
from finassist.store import SearchMode
from finassist.store.base import filing_payload
from finassist.store.edge import EdgeStore
from finassist.symbols import builtin_aliases

from newsgen import FILING_REVENUE, FILING_YEARS, filing_page


@pytest.fixture(scope="module")
def filings(tmp_path_factory, embedder):
    store = EdgeStore(tmp_path_factory.mktemp("filings") / "shard")
    items = []
    for company in FILING_REVENUE:
        for year in FILING_YEARS:
            title, body = filing_page(company, year)
            text = f"{title}\n{body}"
            a = NewsArticle(id=f"{company}-{year}", headline=title, created_at="2026-11-01T10:00:00Z")
            chunk = Chunk(a.id, 0, text)
            items.append(EmbeddedArticle(CleanArticle(a, title, "", body), (chunk,), (embedder.encode([text])[0],)))
    store.write(items)
    yield Retriever(store, embedder, SearchMode(mode="hybrid"))
    store.close()


def test_a_filing_title_becomes_company_year_and_form_in_the_payload():
    assert filing_payload("ACME_2021_10K page 12") == {"company": "ACME", "fiscal_year": 2021, "form": "10-K",
                                                       "page": 12}
    assert filing_payload("acme 10-Q 2023")["form"] == "10-Q"
    assert filing_payload("Acme raises its 2021 outlook") is None  # a news headline is no filing


def test_stored_filings_come_back_with_their_metadata(filings):
    hit = filings.retrieve("ACME total revenue", k=1)[0]
    assert hit.filing == Filing(company="ACME", fiscal_year=int(hit.article_id[-4:]), form="10-K", page=41)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What was ACME's total revenue in fiscal 2020?", "ACME-2020"),
        ("How much revenue did BOLT report for FY2019?", "BOLT-2019"),
        ("CRUX total revenue 2021", "CRUX-2021"),
    ],
)
def test_the_question_s_fiscal_year_and_company_rank_that_filing_first(filings, question, expected):
    found = retrieve_for_question(filings, question, 3, 0.0, 72.0, builtin_aliases(), filing_boost=0.1)
    assert found.hits[0].article_id == expected


def test_without_the_filing_boost_a_neighbouring_year_wins(filings):
    """The guard that the test above measures the boost: the pages alone do not tell the years apart."""
    questions = {
        "What was ACME's total revenue in fiscal 2020?": "ACME-2020",
        "How much revenue did BOLT report for FY2019?": "BOLT-2019",
        "CRUX total revenue 2021": "CRUX-2021",
    }
    tops = {
        q: retrieve_for_question(filings, q, 3, 0.0, 72.0, builtin_aliases(), filing_boost=0.0).hits[0].article_id
        for q in questions
    }
    assert any(tops[q] != want for q, want in questions.items())


def test_the_bonus_counts_year_and_company_and_ignores_news(filings):
    from datetime import UTC, datetime

    from finassist.query import parse_question

    question = "ACME revenue in FY2020"
    bonus = filing_bonus(parse_question(question, {}, datetime(2026, 1, 1, tzinfo=UTC)), question, 0.1)
    by_id = {h.article_id: h for h in filings.retrieve("total revenue", k=9)}
    assert bonus(by_id["ACME-2020"]) == pytest.approx(0.2)
    assert bonus(by_id["ACME-2021"]) == pytest.approx(0.1)
    assert bonus(by_id["BOLT-2020"]) == pytest.approx(0.1)
    assert bonus(by_id["BOLT-2021"]) == 0.0
    assert bonus(by_id["ACME-2020"].model_copy(update={"filing": None})) == 0.0
    assert filing_bonus(parse_question(question, {}, datetime(2026, 1, 1, tzinfo=UTC)), question, 0.0) is None
