"""The review's table reading: a question naming a year, a table row about it, and an answer that gives the row's
other column or no figure, gets the cell of that year's column with its [n]."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from finassist.answer_review import review
from finassist.domain import Hit

WHEN = datetime(2026, 10, 1, tzinfo=UTC)
TABLE = (
    "Deferred tax assets (in thousands)\n"
    "| 2019 | 2018\n"
    "Net operating loss carryforwards | 12,410 | 9,870\n"
    "Total net deferred tax assets | $ | 14,158 | $ | 18,211\n"
    "The valuation allowance rose by $1.2 million in 2019."
)
FILING = Hit(article_id="1", headline="ACME 2019 10-K page 61", score=0.9, created_at=WHEN, updated_at=WHEN,
             symbols=[], text=TABLE, chunk_index=0)
OTHER = Hit(article_id="2", headline="Beacon raises guidance", score=0.5, created_at=WHEN, updated_at=WHEN,
            symbols=[], text="Beacon expects 2019 sales of $410 million.", chunk_index=0)
HITS = [OTHER, FILING]
PROSE = FILING.model_copy(update={"text": TABLE + " State net operating loss carryforwards were $3.4 million."})
ASKED = "What were the total net deferred tax assets in 2018?"
CELL = "Total net deferred tax assets (2018): $18,211 in thousands [2]."


@pytest.mark.parametrize(("answer", "why"), [
    ("The total net deferred tax assets were $14,158 [2].", "read the table"),  # the other year's column
    ("Total net deferred tax assets grew over the year.", "asking for an amount"),  # no figure at all
])
def test_the_other_years_column_or_no_figure_becomes_the_cell_of_the_year_asked(answer, why):
    checked = review(answer, ASKED, HITS)
    assert checked.text == CELL and checked.fallback
    assert why in checked.notes[-1]


def test_an_answer_stating_the_cell_is_kept():
    checked = review("They were $18,211 thousand.", ASKED, HITS)
    assert not checked.fallback and "$18,211" in checked.text and "[2]" in checked.text


def test_a_figure_from_the_prose_beside_the_table_is_left_to_the_model():
    question = "What were the net operating loss carryforwards in 2019?"
    checked = review("Net operating loss carryforwards were $3.4 million [2].", question, [OTHER, PROSE])
    assert checked.text == "Net operating loss carryforwards were $3.4 million [2]." and not checked.fallback


def test_a_question_about_a_change_is_not_read_from_one_column():
    checked = review("They rose from 9,870 [2].", "How much did net operating loss carryforwards rise in 2019?", HITS)
    assert not checked.fallback


def test_a_question_naming_two_years_or_none_is_not_read_from_one_column():
    for question in ("How did total net deferred tax assets change from 2018 to 2019?",
                     "What were the total net deferred tax assets?"):
        checked = review("The total net deferred tax assets were $14,158 [2].", question, HITS)
        assert not checked.fallback, question


def test_a_stub_answer_to_a_table_question_gets_the_cell_not_the_whole_row():
    checked = review("The answer to this question is:", ASKED, HITS)
    assert checked.text == CELL and checked.fallback


def test_a_row_without_the_questions_other_is_another_line_item():
    assets = FILING.model_copy(update={"text": "Balance sheet\n| 2019 | 2018\nTotal assets | 9,500 | 9,100"})
    checked = review("The total other assets were 9,100 [1].", "What were the total other assets in 2019?", [assets])
    assert not checked.fallback and checked.text == "The total other assets were 9,100 [1]."
    checked = review("The total assets were 9,100 [1].", "What were the total assets in 2019?", [assets])
    assert checked.text == "Total assets (2019): 9,500 [1]."


def test_the_cell_answer_names_the_tables_units_once():
    table = FILING.model_copy(update={"text": "Sales, $ in millions\n| 2019 | 2018\nAerospace | $1,327.9 | $1,200.0"})
    checked = review("The answer to this question is:", "What is the Aerospace value in 2019?", [table])
    assert checked.text == "Aerospace (2019): $1,327.9 in millions [1]."


def test_the_row_most_about_the_question_without_a_year_column_is_not_replaced_by_a_lesser_row():
    rows = "Interest expense and other income, net | (8,483) | 503\nProvision for income taxes | 5,566 | (9,825)"
    no_years = FILING.model_copy(update={"text": f"Cash flow items\n{rows}"})
    other = OTHER.model_copy(update={"text": "Other items\n| 2019 | 2018\nOther income, net | 12.0 | (467)"})
    checked = review("The answer to this question is:", "What was the interest expense and other income, net in 2018?",
                     [no_years, other])
    assert checked.fallback and "Other income, net (2018)" not in checked.text


def test_a_row_written_as_an_abbreviation_answers_the_question_spelling_it_out_and_back():
    eps = FILING.model_copy(update={"text": "Per share data\n| 2019 | 2018\nDiluted EPS | $ | 1.42 | $ | 1.17"})
    spelled = review("Diluted earnings per share were $1.17 [1].", "What were diluted earnings per share in 2019?",
                     [eps])
    assert spelled.text == "Diluted EPS (2019): $1.42 [1]." and spelled.fallback
    words = eps.model_copy(update={"text": eps.text.replace("Diluted EPS", "Diluted earnings per share")})
    short = review("It was $1.17 [1].", "What was diluted EPS in 2019?", [words])
    assert short.text == "Diluted earnings per share (2019): $1.42 [1]."
