"""Question → companies and period; filing titles → company, year, form."""

from datetime import UTC, datetime

import pytest

from finassist.query import FilingMetadata, filing_metadata, parse_question, share_classes, with_conversation
from finassist.symbols import builtin_aliases, symbols_in

ALIASES = builtin_aliases()
NOW = datetime(2026, 10, 14, 12, 0, tzinfo=UTC)  # in Q4 2026


def d(*args):
    return datetime(*args, tzinfo=UTC)


def scope(question, now=NOW):
    return parse_question(question, ALIASES, now)


@pytest.mark.parametrize(
    ("question", "tickers", "companies"),
    [
        ("How did Google do?", ("GOOGL", "GOOG"), ("Google",)),
        ("Alphabet's cloud growth", ("GOOGL", "GOOG"), ("Alphabet",)),
        ("Facebook ad revenue", ("META",), ("Facebook",)),
        ("Is Meta spending too much?", ("META",), ("Meta",)),
        ("Berkshire's cash pile", ("BRK.B", "BRK.A"), ("Berkshire",)),
        ("J.P. Morgan and Wal-Mart", ("JPM", "WMT"), ("J.P. Morgan", "Wal-Mart")),
        ("What did Brookward announce?", ("BKWD",), ("Brookward",)),
        ("$TSLA deliveries", ("TSLA",), ()),
        ("What is the CEO's view on AI?", (), ()),
        ("metadata and metaverse hype", (), ()),  # "Meta" inside a word is no company
    ],
)
def test_companies_and_tickers_including_short_former_names_and_share_classes(question, tickers, companies):
    s = scope(question)
    assert s.tickers == tickers
    assert s.companies == companies


def test_share_classes_and_aliases_in_symbols_json_are_valid():
    assert share_classes() == {"GOOGL": ("GOOG",), "BRK.B": ("BRK.A",)}
    assert ALIASES["Facebook"] == "META" and ALIASES["Google"] == "GOOGL"


@pytest.mark.parametrize(
    ("question", "since", "until", "years", "quarters"),
    [
        # Fiscal periods: the window runs 90 days past the period (results and filings come after it).
        ("Facebook revenue FY2018", d(2018, 1, 1), d(2019, 4, 1), (2018,), ()),
        ("fiscal year 2021 margins", d(2021, 1, 1), d(2022, 4, 1), (2021,), ()),
        ("FY22 guidance", d(2022, 1, 1), d(2023, 4, 1), (2022,), ()),
        ("Q3 2023 earnings", d(2023, 7, 1), d(2023, 12, 30), (2023,), (3,)),
        ("3Q23 results", d(2023, 7, 1), d(2023, 12, 30), (2023,), (3,)),
        ("third quarter of 2022", d(2022, 7, 1), d(2022, 12, 30), (2022,), (3,)),
        ("How was Q3?", d(2026, 7, 1), d(2026, 12, 30), (2026,), (3,)),  # the latest Q3 begun
        ("last quarter", d(2026, 7, 1), d(2026, 12, 30), (2026,), (3,)),
        ("2025 revenue", d(2025, 1, 1), d(2026, 4, 1), (2025,), ()),
        ("last year", d(2025, 1, 1), d(2026, 4, 1), (2025,), ()),
        # Calendar phrases: the plain window.
        ("What happened in 2022?", d(2022, 1, 1), d(2023, 1, 1), (2022,), ()),
        ("since 2024", d(2024, 1, 1), None, (2024,), ()),
        ("this year", d(2026, 1, 1), None, (2026,), ()),
        ("year to date", d(2026, 1, 1), None, (2026,), ()),
        ("this quarter", d(2026, 10, 1), None, (2026,), (4,)),
        ("yesterday", d(2026, 10, 13), d(2026, 10, 14), (), ()),
        ("news today", d(2026, 10, 14), None, (), ()),
        ("past 3 days", d(2026, 10, 11, 12), None, (), ()),
        ("this week", d(2026, 10, 7, 12), None, (), ()),
        # Several periods: their union.
        ("Q3 2023 vs Q3 2022", d(2022, 7, 1), d(2023, 12, 30), (2023, 2022), (3,)),
    ],
)
def test_periods_relative_to_now(question, since, until, years, quarters):
    s = scope(question)
    assert (s.since, s.until, s.fiscal_years, s.quarters) == (since, until, years, quarters)


def test_a_bare_quarter_early_in_the_year_means_last_years():
    s = scope("How was Q3?", now=d(2026, 2, 1))
    assert s.fiscal_years == (2025,) and s.since == d(2025, 7, 1)
    assert scope("last quarter", now=d(2026, 2, 1)).quarters == (4,)
    assert scope("last quarter", now=d(2026, 2, 1)).since == d(2025, 10, 1)


@pytest.mark.parametrize(
    "question",
    [
        "Is the stock worth $2022?",  # a price
        "HQ3 and Q33 and Q5 and FAQ3",  # "Q3" inside words, no such quarter
        "It rose 2022.5 points",
        "2,022 employees were laid off",
        "Order number 12020231 shipped",
        "Which stocks should I buy?",
    ],
)
def test_non_periods_give_no_window(question):
    s = scope(question)
    assert (s.since, s.until, s.fiscal_years, s.quarters) == (None, None, (), ())
    assert not s.has_period


def test_a_naive_now_is_utc():
    assert scope("yesterday", now=datetime(2026, 10, 14, 12)).since == d(2026, 10, 13)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("ACME_2021_10K page 12", FilingMetadata("ACME", 2021, "10-K", 12)),
        ("ACME_2021_10K", FilingMetadata("ACME", 2021, "10-K")),
        ("acme 10-K 2021", FilingMetadata("acme", 2021, "10-K")),
        ("MSFT_2019_10Q_p_3", FilingMetadata("MSFT", 2019, "10-Q", 3)),
        ("BRK.B 2020 10-K page 7", FilingMetadata("BRK.B", 2020, "10-K", 7)),
        ("TOYOTA_2022_20F", FilingMetadata("TOYOTA", 2022, "20-F")),
        ("ACME_2021_annual_report", FilingMetadata("ACME", 2021, "annual report")),
    ],
)
def test_filing_titles_give_company_year_form_and_page(title, expected):
    assert filing_metadata(title) == expected


@pytest.mark.parametrize(
    "title",
    ["Brookward To Acquire Saltmarsh Trust", "Random title 2021", "ACME_2021_10KX", "ACME_21_10K", "2021_10K", ""],
)
def test_titles_that_are_not_filings_give_none(title):
    assert filing_metadata(title) is None


ASKED = "Which company is Brookward buying?"
ANSWERED = "Brookward agreed to acquire Saltmarsh Trust Company for about $7.11 billion [1]."


def test_a_follow_up_that_points_back_carries_the_earlier_turns():
    out = with_conversation(
        "How big is that deal and how will they pay for it?", [("user", ASKED), ("assistant", ANSWERED)], ALIASES
    )
    assert out.query == f"How big is that deal and how will they pay for it?\n{ASKED}\n{ANSWERED}"
    assert out.about == f"How big is that deal and how will they pay for it?\n{ASKED}"  # tickers: user turns only
    assert out.carried == 2


@pytest.mark.parametrize(
    "question",
    [
        "What is new at Celquora?",  # names its own company
        "What is the Fed doing with rates?",  # points nowhere back
        "Which stocks rose today?",
    ],
)
def test_a_question_that_stands_alone_is_not_changed(question):
    out = with_conversation(question, [("user", ASKED), ("assistant", ANSWERED)], ALIASES)
    assert (out.query, out.about, out.carried) == (question, question, 0)


def test_carrying_goes_back_to_the_turn_that_names_a_company_and_no_further():
    history = [
        ("user", "What is new at Celquora?"),
        ("assistant", "Celquora slipped after a downgrade."),
        ("user", ASKED),
        ("assistant", ANSWERED),
        ("user", "Why that deal?"),
        ("assistant", "To grow its trust business."),
    ]
    out = with_conversation("And how will they pay for it?", history, ALIASES)
    assert "Celquora" not in out.query and ASKED in out.about and "Why that deal?" in out.about
    assert symbols_in(out.about, ALIASES) == ["BKWD"]


def test_an_answer_is_carried_only_by_its_opening():
    out = with_conversation("What did they pay?", [("user", ASKED), ("assistant", "x" * 5000)], ALIASES)
    assert len(out.query) < 500


def test_no_history_or_only_answers_carry_nothing():
    assert with_conversation("What did they pay?", [], ALIASES).carried == 0
    assert with_conversation("What did they pay?", [("assistant", ANSWERED)], ALIASES).carried == 0


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("What did Brookward announce yesterday?", d(2026, 10, 13), d(2026, 10, 14)),
        ("Which stocks moved this week?", d(2026, 10, 7, 12), None),
        ("Brookward news in 2022", d(2022, 1, 1), d(2023, 1, 1)),
        ("How has SGSX done this year?", d(2026, 1, 1), None),
        ("past 3 days", d(2026, 10, 11, 12), None),
        # Fiscal periods are about what was reported: no news filter.
        ("Brookward Q3 results", None, None),
        ("FY2025 revenue", None, None),
        ("last quarter", None, None),
        ("2025 revenue", None, None),
        # Both: the calendar part filters.
        ("Q3 results announced yesterday", d(2026, 10, 13), d(2026, 10, 14)),
    ],
)
def test_only_calendar_phrases_make_a_news_window(question, since, until):
    s = scope(question)
    assert (s.news_since, s.news_until) == (since, until)
    assert s.has_news_window == (since is not None or until is not None)
