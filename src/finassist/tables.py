"""Tables in cleaned text: blocks of consecutive `cell | cell` rows, their header rows and their title. Pure.

Cleaning renders every <tr> as a line of cells joined by " | " (TAT-QA tables arrive the same way). A chunk that
starts in the middle of a table would hold bare numbers ("Total | 7,821 | 8,290") without the years, units or
column labels they belong to, so the chunker repeats a table's title and header rows in front of such a chunk.
The answer review reads cells back (`cells_of_year`): each row's cell in the column of the year a question names.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from finassist.textsearch import year_of

MAX_HEADER_ROWS = 4
MAX_TITLE_CHARS = 300  # a longer line before a table is prose, not its caption

_LINE = re.compile(r"[^\n]+")
MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# Dates ("December 31", "30 June") and footnote marks ("2019 (1)") in a header cell are no figures.
_MONTH_DAY = re.compile(rf"\b{MONTH}\s*\d{{1,2}}\b|\b\d{{1,2}}\s+{MONTH}|\(\d{{1,2}}\)|\bnote\s+\d+", re.I)
# What may stand in a header cell besides words: years, quarters, fiscal-year marks (FY19, F19), spans of time
# ("52 weeks", "1-3 years"), footnote digits glued to a word ("RESTATED3").
_HEADER_NUMBERS = re.compile(
    r"\b(?:FY\s?)?(?:19|20)\d\d\b|\b[1-4]?Q[1-4]?\b|\bH[12]\b|\bFY?\d\d\b"
    r"|\b\d{1,3}(?:\s*[-–]\s*\d{1,3})?\s*(?:weeks?|months?|years?|days?)\b|(?<=[A-Za-z])\d(?:\s*[-–]\s*\d)?\b",
    re.I,
)


@dataclass(frozen=True)
class Table:
    """Character spans in the text the table was found in."""

    start: int  # the first row
    end: int  # end of the last row
    header: tuple[tuple[int, int], ...]  # header rows, in order
    title: tuple[int, int] | None  # the caption line right before the table


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("|")]


def is_row(line: str) -> bool:
    return "|" in line and sum(1 for c in _cells(line) if c) >= 1 and len(_cells(line)) >= 2


def _is_header_row(line: str, first: bool = False) -> bool:
    """Years, units and labels, no figures: ` | 2019 | 2018`, `(in millions) | Q3 | Q2`, `Item | Amount`. A row
    with only its first cell filled labels a section ("Industrial Solutions: | |"), or, as the table's first row,
    captions it ("Income tax expense | |")."""
    cells = _cells(line)
    filled = [c for c in cells[1:] if c]
    if not filled and not first:
        return False
    return not any(re.search(r"\d", _HEADER_NUMBERS.sub("", _MONTH_DAY.sub("", c))) for c in cells if c)


def find_tables(text: str) -> list[Table]:
    """Every block of two or more consecutive rows, in order. Linear in the text's length."""
    lines = [(m.start(), m.end()) for m in _LINE.finditer(text)]
    tables: list[Table] = []
    i = 0
    while i < len(lines):
        if not is_row(text[lines[i][0] : lines[i][1]]):
            i += 1
            continue
        j = i
        while j + 1 < len(lines) and is_row(text[lines[j + 1][0] : lines[j + 1][1]]):
            j += 1
        if j > i:
            rows = lines[i : j + 1]
            header = []
            for n, span in enumerate(rows[: min(MAX_HEADER_ROWS, len(rows) - 1)]):
                if not _is_header_row(text[span[0] : span[1]], first=n == 0):
                    break
                header.append(span)
            title = None
            if i > 0:
                before = text[lines[i - 1][0] : lines[i - 1][1]].strip()
                if before and len(before) <= MAX_TITLE_CHARS:
                    title = lines[i - 1]
            tables.append(Table(rows[0][0], rows[-1][1], tuple(header), title))
        i = j + 1
    return tables


class TableContext:
    """For a position in a text: the title and header rows a chunk starting there needs to repeat (if any)."""

    def __init__(self, text: str):
        self.source = text
        self.tables = find_tables(text)
        self._starts = [t.start for t in self.tables]

    def locate(self, pos: int) -> tuple[int, int] | None:
        """(table index, header rows before `pos`) when a chunk starting at `pos` needs context repeated: `pos` lies
        in a table after its first row (a chunk starting at it or before the table holds the context itself)."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return None
        table = self.tables[i]
        if not table.start < pos < table.end:
            return None
        before = sum(1 for h in table.header if h[0] < pos)
        return (i, before) if before or table.title else None

    def text(self, key: tuple[int, int]) -> str:
        """The title and the first header rows that `locate` named, one per line."""
        table = self.tables[key[0]]
        spans = ([table.title] if table.title else []) + list(table.header[: key[1]])
        return "\n".join(self.text_of(s, e) for s, e in spans)

    def text_of(self, start: int, end: int) -> str:
        return self.source[start:end].strip()

    def at(self, pos: int) -> str:
        """The context a chunk starting at `pos` repeats ("" for none)."""
        key = self.locate(pos)
        return self.text(key) if key else ""


# --- reading one cell: the row a question is about, the column of the year it names -----------------------------
CURRENCY_SIGNS = ("$", "€", "£")
_YEAR = re.compile(r"(?<![\w$.,])((?:19|20)\d\d)(?![\w%]|[.,]\d)|\bFY\s?'?(\d\d)\b", re.IGNORECASE)
# What a table's numbers are in: "(in millions)", "$ in thousands", "In thousands of Canadian dollars", "$'000".
_UNITS = re.compile(
    r"(?:[$€£]\s?)?\bin\s+(?:millions|thousands|billions)\b(?:\s+of\s+(?:[A-Z][a-z]+\s+)?(?:dollars|euros|pounds))?"
    r"|[$€£]\s?(?:millions|thousands|billions|'000|000s?)\b",
    re.IGNORECASE,
)
# A cell holding one number as tables write them: "$35.66", "(1,212)", "$(9.8)", "12.5%", "—" is none.
_NUMBER_CELL = re.compile(
    r"[(\-–]?\s?(?:US)?[$€£]?\s?\(?\d{1,3}(?:,\d{3})*(?:\.\d+)?\)?\s?%?\)?|[(\-–]?[$€£]?\d+(?:\.\d+)?%?\)?"
)


def years_in(text: str) -> list[int]:
    """The years a text names ("2019", "fiscal 2019", "FY19", "January 31, 2020"), in order, each once."""
    return list(dict.fromkeys(int(year_of(a or b)) for a, b in _YEAR.findall(text)))


@dataclass(frozen=True)
class Cell:
    label: str  # the row's label, its first filled cell ("Weighted-average fair value at grant date")
    column: str  # the column's header text ("2020", "January 31, 2020")
    value: str  # the cell as written ("$35.66")
    units: str  # what the table's title or header says its numbers are in ("in millions"), or ""
    table: str = field(default="", compare=False)  # the table's rows: the figures it holds


def _aligned(cells: list[str], width: int) -> list[str]:
    """A header line's cells placed over a data row of `width` cells. A shorter line that opens with an empty cell
    keeps the label column and starts flush left (` | 2019 | 2018` over `Total | 48,881 | 51,896 | (3,015) | (6)%`);
    a shorter one that does not has lost it, e.g. to a cell's line break ("January 31,\n2020 | February 1, 2019"),
    and ends flush right. A longer line is two header rows run together (a headline's line break lost): the last
    row starts at the line's last empty cell, its label column; if that part is still too long, no cells."""
    while cells and not cells[-1]:
        cells = cells[:-1]
    if len(cells) > width:
        last = max((i for i, c in enumerate(cells) if not c), default=None)
        if last is None or len(cells) - last > width:
            return []
        cells = cells[last:]
    if cells and not cells[0]:
        return cells + [""] * (width - len(cells))
    return [""] * (width - len(cells)) + cells


def _merged_signs(cells: list[str]) -> list[str]:
    """A data row's cells with a currency sign standing alone ("Total | $ | 7,821") joined to the figure after it:
    the header rows over such a table name one column per figure, not per sign."""
    out: list[str] = []
    for cell in cells:
        if out and out[-1] in CURRENCY_SIGNS and cell:
            out[-1] += cell
        else:
            out.append(cell)
    while out and not out[-1]:
        out.pop()
    return out


def _units(text: str, table: Table, header_lines: list[str]) -> str:
    caption = text[table.title[0] : table.title[1]] if table.title else ""
    found = _UNITS.search(" ".join([caption, *header_lines]))
    if not found:
        return ""
    return re.sub(r"\b(?:in|millions|thousands|billions)\b", lambda m: m.group(0).lower(), found.group(0),
                  flags=re.IGNORECASE)


def cells_of_year(text: str, year: int) -> Iterator[tuple[str, str, Cell | None]]:
    """(row line, label, cell) for every data row (not a header row) of every table in `text`, the label being its
    first filled cell: the cell in the column whose header names `year`, or None where the table has no such
    column or that cell holds no number (the first of two such columns, "2019" and "% change 2019", is the value)."""
    for table in find_tables(text):
        header_lines = [text[s:e].strip() for s, e in table.header]
        block = text[table.start : table.end]
        units: str | None = None  # read once per table, when a cell needs it
        for line in (raw.strip() for raw in block.splitlines()):
            if not line or line in header_lines:
                continue
            label = next((c for c in _cells(line) if c), "")
            cells = _merged_signs(_cells(line))
            named: dict[int, str] = {}  # column → the first header cell over it that names the year
            for header in header_lines:
                for i, h in enumerate(_aligned(_cells(header), len(cells))):
                    if i > 0 and i not in named and year in years_in(h):
                        named[i] = h
            value = cells[min(named)] if named else ""
            if not _NUMBER_CELL.fullmatch(value) or year in years_in(value):
                yield line, label, None
                continue
            units = _units(text, table, header_lines) if units is None else units
            yield line, label, Cell(label, named[min(named)], value, units, block)
