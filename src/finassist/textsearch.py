"""Text as the sparse (BM25) leg of retrieval sees it: the one hook every indexed chunk and every query goes through.

`search_text` appends the spellings a person types for the finance identifiers in a text, so whichever spelling a
document or a question uses ("10-K" or "10K", "BRK.B" or "BRKB", "FY22" or "fiscal 2022") meets a common token.
This text feeds only the sparse leg: the dense embedding and what users see keep the original.

Checked against qdrant-edge's own `Bm25` word tokenizer, which lowercases, stems, drops stopwords and splits on
every non-alphanumeric character: "ACME_2021_10K" → acme/2021/10k, "BRK.B" → brk/b, "10-K" → 10/k, "FY2022" →
fy2022 (one token, so a question saying "2022" would miss it), "$2.54" → 2/54, so numbers are made one token first
("$2.54" → 2p54, "1,234.50" → 1234p5: documents and queries alike). Adjacent word pairs become terms as well
("total sales" → totalsales), so a line item matches as a phrase (TAT-QA nDCG@10 of BM25: 59.0 before both
rules, 60.2 with number tokens, 65.8 with word pairs too; docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}
_SCALES = {"m": "million", "mm": "million", "mn": "million", "b": "billion", "bn": "billion", "tn": "trillion"}
_YEAR = r"(?:19|20)\d\d"
# Not followed by more of a number: "Q3 2023" is a period, "Q3 2023.5" or "FY2022%" is not.
_END = r"(?![\w$%]|[.,]\d)"

# Identifiers glued with underscores (file names, report ids): ACME_2021_10K → ACME 2021 10K.
_SNAKE = re.compile(r"(?<![\w$])[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+(?!\w)")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,10}(?:[.\-][A-Za-z])?)(?!\w|\.\w)")
# Share classes: BRK.B / BRK-B / BRK/B. Two capitals at least before the separator, so "U.S." is not one.
_SHARE_CLASS = re.compile(r"(?<![\w.$])\$?([A-Z]{2,5})[.\-/]([A-Z])(?!\w|\.\w)")
# SEC forms: 10-K, 10-Q, 8-K, 20-F, 40-F, 10-KT, 10-K/A; S-1, F-1, S-4.
_FORM = re.compile(
    r"(?<![\w\-.,$])(?:(10|8|20|40|6)-?(KT|QT|K|Q|F)(?:/A)?|([SF])-([1-4]))(?![\w\-]|\.\w)", re.IGNORECASE
)
# Fiscal years: FY2022, FY 2022, FY-22, FY'22, FY22, fiscal 2022, fiscal year 2022.
FISCAL_YEAR = re.compile(rf"(?<![\w$])(?:FY[\s\-']?({_YEAR}|\d\d)|fiscal\s+(?:year\s+)?({_YEAR})){_END}", re.IGNORECASE)
# Quarters: Q3, Q3 2023, Q3-23, Q3'23, Q3 FY23, 3Q23, 3Q 2023, third quarter (of) 2023. A two-digit year must be
# attached (3Q23, Q3-23, Q3'23) or follow FY: "Q3 20 analysts" names no year.
QUARTER = re.compile(
    r"(?<![\w$])(?:Q([1-4])|([1-4])Q|(first|second|third|fourth|1st|2nd|3rd|4th)[\s\-]+quarter)"
    rf"(?:(?:\s+of|,)?\s+(?:FY\s?)?({_YEAR})|[\-']?(?:FY)?(\d\d)|\s+FY[\-']?(\d\d))?{_END}",
    re.IGNORECASE,
)
# Amounts with a scale suffix: $2.5B, $300M, 300mn, 1.2 bn ("$" needed for one-letter suffixes: "5b" is no amount).
_SCALED = re.compile(
    r"(?<![\w.,$])(?:\$(\d+(?:\.\d+)?)\s?(mm|mn|bn|tn|m|b)|(\d+(?:\.\d+)?)\s?(mm|mn|bn|tn))(?!\w)", re.IGNORECASE
)
# Numbers with thousands separators or a decimal part: 1,234,567.50 and 4.30 (the tokenizer would cut them at each
# comma and point, leaving fragments such as "234" and "30" that match unrelated numbers and inflate a table's length).
_NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?![\d,]|\.\d)")
# Where a phrase ends: sentence and clause punctuation, brackets, quotes, table cells and lines.
_SEGMENT = re.compile(r"[|\n.;:!?()\[\]\"“”]+|,\s")
_ALNUM = re.compile(r"[a-z0-9]+")


def year_of(text: str) -> str:
    """A year as written in a period ("2023", or "23" in 3Q23 / FY23) as four digits."""
    return text if len(text) == 4 else f"20{text}"


def quarter_of(match: re.Match[str]) -> tuple[int, int | None]:
    """(quarter, year or None) of a `QUARTER` match."""
    q = match.group(1) or match.group(2) or str(_ORDINALS[match.group(3).lower()])
    year = match.group(4) or match.group(5) or match.group(6)
    return int(q), int(year_of(year)) if year else None


def _expansions(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """(match, its expansion) for each finance identifier in `text`."""
    for m in _SNAKE.finditer(text):
        yield m, m.group(0).replace("_", " ")
    for m in _CASHTAG.finditer(text):
        yield m, m.group(1)
    for m in _SHARE_CLASS.finditer(text):
        yield m, f"{m.group(1)}.{m.group(2)} {m.group(1)}{m.group(2)}"
    for m in _FORM.finditer(text):
        yield m, f"{m.group(1)}{m.group(2).upper()}" if m.group(1) else f"{m.group(3).upper()}{m.group(4)}"
    for m in FISCAL_YEAR.finditer(text):
        year = year_of(m.group(1) or m.group(2))
        yield m, f"FY{year} {year}"
    for m in QUARTER.finditer(text):
        q, year = quarter_of(m)
        yield m, f"Q{q} {year}" if year else f"Q{q}"
    for m in _SCALED.finditer(text):
        number, scale = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        yield m, f"{number} {_SCALES[scale.lower()]}"


def finance_terms(text: str) -> list[str]:
    """The extra words for `text`'s finance identifiers, in order of appearance, without duplicates; a word the
    identifier already spells out (the "FY2022" of FY2022 → FY2022 2022) is not repeated."""
    found: list[tuple[int, str]] = []
    for m, expansion in _expansions(text):
        own = {w.lower() for w in m.group(0).split()}
        found += [(m.start(), w) for w in expansion.split() if w.lower() not in own]
    seen: dict[str, str] = {}  # lowercased -> first spelling
    for _, word in sorted(found, key=lambda f: f[0]):
        seen.setdefault(word.lower(), word)
    return list(seen.values())


def number_token(number: str) -> str:
    """One token for a number however it is grouped or padded: 1,496.50 → 1496p5, 84.0 → 84, 4.30 → 4p3."""
    whole, _, fraction = number.replace(",", "").partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}p{fraction}" if fraction else whole


def word_pairs(text: str, is_stopword: Callable[[str], bool]) -> list[str]:
    """Each two adjacent words of a phrase as one term ("total sales" → totalsales), skipping stopwords and never
    across a sentence, clause or table cell, nor with a number: financial line items and names are phrases
    ("cost of revenue", "operating income", "share repurchase"), and their words one by one match every table."""
    pairs: list[str] = []
    for segment in _SEGMENT.split(text.lower()):
        words = [w for w in _ALNUM.findall(segment) if not is_stopword(w)]
        pairs += [a + b for a, b in zip(words, words[1:], strict=False) if a.isalpha() and b.isalpha()]
    return pairs


def search_text(text: str, is_stopword: Callable[[str], bool] | None = None) -> str:
    """The text the BM25 encoder tokenizes, for documents and queries alike: the original, then a line of the
    finance spellings it implies (nothing added when it names none), with every grouped or decimal number as one
    token (`number_token`); given the encoder's stopwords, then a line of its word pairs (`word_pairs`)."""
    extra = finance_terms(text)
    joined = f"{text}\n{' '.join(extra)}" if extra else text
    joined = _NUMBER.sub(lambda m: number_token(m.group(0)), joined)
    pairs = word_pairs(joined, is_stopword) if is_stopword is not None else []
    return f"{joined}\n{' '.join(pairs)}" if pairs else joined
