"""Questions that follow the news (issue 13 §1): one per fresh article, about its company and event, stable for the
same news, and never repeating a fixed question; `dataset generate --from-news N` adds them to a dataset."""

from __future__ import annotations

from datetime import UTC, datetime

from finassist.domain import Hit
from finassist.training.dataset import question_bucket
from finassist.training.news_questions import company_name, news_questions, question_for, with_news_questions
from finassist.training.questions import QuestionSet, Topic

ALIASES = {"Tesla": "TSLA", "Tesla Motors": "TSLA", "Alphabet": "GOOGL"}
SET = QuestionSet.model_validate({
    "personas": [{"id": "saver", "about_me": "I am 35 and saving for a house in five years."},
                 {"id": "retiree", "about_me": "I am 68 and live on dividends from utilities."}],
    "questions": [{"id": "q001", "persona": "saver", "topic": "stocks",
                   "question": "What did Tesla Motors ($TSLA) announce about its dividend?"}],
})


def hit(aid: str, headline: str, symbols: list[str], summary: str = "") -> Hit:
    t = datetime(2026, 11, 30, tzinfo=UTC)
    return Hit(article_id=aid, headline=headline, score=0.0, created_at=t, updated_at=t, symbols=symbols,
               text=headline, summary=summary, chunk_index=0)


def test_the_headline_event_picks_the_question_and_the_company_is_named_with_its_cashtag():
    cases = {
        "Brookward Financial Q3 EPS Beats Estimates": (Topic.EARNINGS, "What were the latest results of Brookward "
                                                       "Financial ($BKWD), and did they beat estimates?"),
        "Brookward Financial Raises Quarterly Dividend To $0.52": (Topic.STOCKS, "What did Brookward Financial "
                                                                   "($BKWD) announce about its dividend?"),
        "Brookward Financial To Buy Harbor Trust For $2.1 Billion": (Topic.STOCKS, "What deal did Brookward "
                                                                     "Financial ($BKWD) announce, and what are its "
                                                                     "terms?"),
        "Morgan Stanley Downgrades Brookward": (Topic.STOCKS, "Why did analysts change their view on Brookward "
                                                "($BKWD), and what is their target?"),  # not on the analyst's firm
    }
    for headline, expected in cases.items():
        assert question_for(hit("1", headline, ["BKWD"]), {}) == expected, headline
    assert company_name(hit("2", "Tesla Recalls 40,000 Cars", ["TSLA"]), "TSLA", ALIASES) == "Tesla Motors ($TSLA)"
    assert company_name(hit("3", "$ZZZ surges", ["ZZZ"]), "ZZZ", {}) == "$ZZZ"
    assert company_name(hit("5", "Stocks To Watch: Harbor Trust", ["ZZZ"]), "ZZZ", {}) == "$ZZZ"  # no name like it
    assert question_for(hit("4", "Fed Holds Rates Steady", []), {}) is None  # names no company
    prose = hit("6", "Oxbow Industries Pares Forecast", ["OXBW"])
    prose.text = f"{prose.headline}\nOxbow Industries pared its full-year forecast, citing weaker demand in Europe."
    assert company_name(prose, "OXBW", {}) == "Oxbow Industries ($OXBW)"  # "Pares" is lower-case in the prose


def test_news_questions_are_stable_distinct_from_the_fixed_set_and_capped():
    articles = [
        hit("1", "Tesla Raises Its Dividend", ["TSLA"]),  # the fixed set already asks this
        hit("2", "Voltrix Semiconductor Raises Revenue Outlook", ["VLTX"]),
        hit("3", "Voltrix Semiconductor Lifts Its Outlook Again", ["VLTX"]),  # the same question again
        hit("4", "Fed Holds Rates Steady", []),
        hit("5", "Riverment Motors Recalls 40,000 Sedans", ["RVMT"]),
        hit("6", "Greenbarrow Foods Cuts 300 Jobs In Restructuring", ["GRNB"]),
    ]
    out = news_questions(articles, SET, ALIASES, limit=2)
    assert [q.question for q in out] == [
        "What outlook did Voltrix Semiconductor ($VLTX) give, and how does it compare with before?",
        "What risk does the latest news pose for Riverment Motors ($RVMT) shareholders?",
    ]
    assert out == news_questions(articles, SET, ALIASES, limit=2)  # same news, same ids, personas and texts
    assert all(q.id.startswith("q9") and q.persona in ("saver", "retiree") for q in out)
    merged = with_news_questions(SET, articles, ALIASES, limit=10)
    assert len(merged.questions) == 1 + 3 and merged.questions[0].id == "q001"
    # The held-out side depends on the question alone: a later dataset puts the same question on the same side.
    assert [question_bucket(q.question) for q in out] == [question_bucket(q.question) for q in merged.questions[1:3]]
