"""Tables in cleaned text: which lines form a table, which rows are its header, which line is its title."""

import pytest

from finassist.feature.clean import html_to_paragraphs
from finassist.tables import Cell, TableContext, cells_of_year, find_tables, years_in

# A TAT-QA table, as the corpus renders it.
TATQA = (
    " |  | Fiscal | \n | 2019 | 2018 | 2017\n |  | (in millions) | \nTransportation Solutions: |  |  | \n"
    "Automotive | $ 5,686 | $ 6,092 | $  5,228\nSensors | 914 | 918 | 814\nTotal | $ 13,448 | $ 13,988 | $ 12,185"
)


def spans(text, table):
    return [text[s:e] for s, e in table.header], text[slice(*table.title)] if table.title else None


def test_years_units_and_blank_label_rows_are_the_header_and_a_section_label_is_not():
    [table] = find_tables(TATQA)
    header, title = spans(TATQA, table)
    assert header == [" |  | Fiscal | ", " | 2019 | 2018 | 2017", " |  | (in millions) | "]
    assert title is None
    assert (table.start, table.end) == (0, len(TATQA))


def test_the_short_line_before_a_table_is_its_title():
    text = (
        "Brookward said on Monday.\n\nNet sales by segment (in millions):\nSegment | Q3 2026 | Q3 2025\n"
        "Cards | 1,200 | 1,050\nLoans | 900 | 870\n\nAfter the table."
    )
    [table] = find_tables(text)
    header, title = spans(text, table)
    assert header == ["Segment | Q3 2026 | Q3 2025"]
    assert title == "Net sales by segment (in millions):"


def test_a_table_whose_first_row_holds_figures_has_no_header():
    text = "Cards | 1,200 | 1,050\nLoans | 900 | 870"
    [table] = find_tables(text)
    assert table.header == ()


def test_dates_with_day_numbers_still_make_a_header_row():
    text = " | December 31, 2019 | December 31, 2018\nCash | 1,000 | 900\nDebt | 50 | 60"
    [table] = find_tables(text)
    assert spans(text, table)[0] == [" | December 31, 2019 | December 31, 2018"]


def test_a_single_pipe_line_in_prose_is_not_a_table():
    assert find_tables("Shares rose | analysts cheered.\n\nNothing else here.") == []


def test_two_tables_are_found_apart_and_the_cleaner_output_is_understood():
    html = (
        "<p>Quarterly results</p><table><tr><th></th><th>2026</th><th>2025</th></tr>"
        "<tr><td>Revenue</td><td>5.9</td><td>5.6</td></tr><tr><td>EPS</td><td>1.31</td><td>1.20</td></tr></table>"
        "<p>Guidance raised.</p><table><tr><td>Outlook</td><td>Low</td><td>High</td></tr>"
        "<tr><td>Sales</td><td>24.0</td><td>25.5</td></tr></table>"
    )
    text = "\n\n".join(html_to_paragraphs(html))
    first, second = find_tables(text)
    assert spans(text, first) == (["2026 | 2025"], "Quarterly results")  # the cleaner drops an empty first cell
    assert spans(text, second) == (["Outlook | Low | High"], "Guidance raised.")


def test_context_is_given_only_inside_a_table_after_its_first_row():
    text = "Title line\n | 2019 | 2018\nA | 1 | 2\nB | 3 | 4\n\nProse after."
    ctx = TableContext(text)
    inside = text.index("B |")
    assert ctx.at(inside) == "Title line\n| 2019 | 2018"
    assert ctx.at(text.index(" | 2019")) == ""  # the window holds the header itself
    assert ctx.at(0) == ""
    assert ctx.at(text.index("Prose")) == ""


def test_header_cells_may_hold_dates_periods_and_footnote_marks_but_not_figures():
    # Header rows as TAT-QA annual reports write them.
    text = (
        "Income tax expense |  |  | \n"  # a first row with only a first cell captions the table
        " | 52 weeks ended 30 Mar 2019 £m | 2018 (1) | FY19 | 1-3 Years\n"
        "Profit before tax | (42.7) | 20.9 | 3.1 | 4\n"
        "Tax | 1,000 | 900 | 1 | 2"
    )
    [table] = find_tables(text)
    assert len(table.header) == 2
    assert "Profit" not in "".join(spans(text, table)[0])


def test_a_section_label_after_the_header_is_not_header():
    [table] = find_tables(TATQA)
    assert "Transportation Solutions" not in "".join(spans(TATQA, table)[0])


# --- reading one cell back (the answer review) --------------------------------------------------------------------
def read_cell(text: str, row: str, year: int) -> Cell | None:
    """The cell `cells_of_year` gives for the data row `row` (None: no such data row, or no cell for the year)."""
    return next((cell for line, _, cell in cells_of_year(text, year) if line == row), None)


VMWARE = (  # a TAT-QA table as the benchmark renders it: a header cell's line break splits the header row in two
    "|  | For the Year Ended | \n"
    "VMware Employee Stock Purchase Plan | January 31,\n"
    "2020 | February 1, 2019 | February 2, 2018\n"
    "Dividend yield | None | None | None\n"
    "Expected volatility | 27.4% | 33.5% | 22.6%\n"
    "Weighted-average fair value at grant date | $35.66 | $34.72 | $21.93"
)
FAIR_VALUE = "Weighted-average fair value at grant date | $35.66 | $34.72 | $21.93"


@pytest.mark.parametrize(("year", "value", "column"), [
    (2020, "$35.66", "2020"), (2019, "$34.72", "February 1, 2019"), (2018, "$21.93", "February 2, 2018"),
])
def test_a_cell_is_read_from_the_column_whose_header_names_the_year(year, value, column):
    cell = read_cell(VMWARE, FAIR_VALUE, year)
    assert (cell.label, cell.value, cell.column) == ("Weighted-average fair value at grant date", value, column)


def test_no_cell_for_a_year_no_column_names_a_header_row_or_a_cell_without_a_number():
    assert read_cell(VMWARE, FAIR_VALUE, 2017) is None
    assert read_cell(VMWARE, "Dividend yield | None | None | None", 2020) is None
    assert read_cell(VMWARE, "2020 | February 1, 2019 | February 2, 2018", 2020) is None
    assert read_cell(VMWARE, "Not a row of this text | 1.0 | 2.0", 2020) is None


def test_currency_signs_in_cells_of_their_own_keep_the_columns_aligned_and_the_units_come_along():
    text = "Revenue by segment (in millions)\n| 2019 | 2018\nCloud | 1,234 | 1,100\nTotal | $ | 7,821 | $ | 8,290"
    assert read_cell(text, "Total | $ | 7,821 | $ | 8,290", 2019) == Cell("Total", "2019", "$7,821", "in millions")
    assert read_cell(text, "Cloud | 1,234 | 1,100", 2018).value == "1,100"


@pytest.mark.parametrize(("text", "years"), [
    ("What was revenue in 2019?", [2019]), ("FY19 vs fiscal 2020", [2019, 2020]), ("January 31, 2020", [2020]),
    ("$2019 and 2019.5 and 2019%", []), ("Q3 sales", []),
])
def test_years_named_in_text(text, years):
    assert years_in(text) == years


def test_a_header_line_that_keeps_the_label_column_is_read_flush_left():
    text = ("| Years Ended December 31, |  | Increase (Decrease) | \n | 2019 | 2018\n| Amount | Percent\n"
            "Products | $29,816 | $34,066 | $(4,250) | (12)%\n"
            "Total cost of revenue | $48,881 | $51,896 | $(3,015) | (6)%")
    row = "Total cost of revenue | $48,881 | $51,896 | $(3,015) | (6)%"
    assert [read_cell(text, row, y).value for y in (2019, 2018)] == ["$48,881", "$51,896"]


@pytest.mark.parametrize(("header", "row", "year", "value"), [
    # Two header rows run into one line (a headline's line break lost): the last starts at its last empty cell.
    ("| Years Ended December 31, | | Increase (Decrease) | | 2019 | 2018\n| Amount | Percent",
     "Total cost of revenue | $48,881 | $51,896 | $(3,015) | (6)%", 2019, "$48,881"),
    ("| | Year Ended December 31, | | 2019 | 2018 | 2017 Gain (loss)", "Servicing fees | 3,901 | 2,321 | 2,821", 2018,
     "2,321"),
    ("Fiscal year ended December 31, | 2019 | 2018 | 2017 | 2016 | 2015", "Revenue | 1.0 | 2.0", 2019, None),
])
def test_a_header_line_longer_than_the_row_is_split_where_its_last_row_starts(header, row, year, value):
    cell = read_cell(f"{header}\n{row}", row, year)
    assert (cell.value if cell else None) == value


@pytest.mark.parametrize(("caption", "units"), [
    ("Results (In Millions, Except Percentages and Per Share Amounts)", "in millions"),
    ("Balances (In thousands of Canadian dollars)", "in thousands of Canadian dollars"),
    ("Segment assets, $ in millions", "$ in millions"),
    ("Segment assets", ""),
])
def test_a_cell_carries_the_units_its_table_states(caption, units):
    text = f"{caption}\n| 2019 | 2018\nTotal | 1,234 | 1,100"
    assert read_cell(text, "Total | 1,234 | 1,100", 2019).units == units
