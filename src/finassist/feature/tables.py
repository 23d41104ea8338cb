"""Tables in cleaned text: blocks of consecutive `cell | cell` rows, their header rows and their title. Pure.

Cleaning renders every <tr> as a line of cells joined by " | " (TAT-QA tables arrive the same way). A chunk that
starts in the middle of a table would hold bare numbers ("Total | 7,821 | 8,290") without the years, units or
column labels they belong to, so the chunker repeats a table's title and header rows in front of such a chunk.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

MAX_HEADER_ROWS = 4
MAX_TITLE_CHARS = 300  # a longer line before a table is prose, not its caption

_LINE = re.compile(r"[^\n]+")
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# Dates ("December 31", "30 June") and footnote marks ("2019 (1)") in a header cell are no figures.
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s*\d{{1,2}}\b|\b\d{{1,2}}\s+{_MONTH}|\(\d{{1,2}}\)|\bnote\s+\d+", re.I)
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
