"""The review of a generated answer: the checks of `answer_checks` applied in order, and the repair each calls for.

    review(answer, question, hits) → strip stub lead-ins, trim loops, drop [n] that point nowhere, add [n] where a
                                     sentence's figures come from one source; empty / stub / loop / only the
                                     question's words / invented figures or names / figures or names only from
                                     sentences off the question / no number for an amount → the extractive answer:
                                     the table cell the question asks for, else the best source's key sentence
                                     quoted, with its [n]; a table row's other column (another year) or no figure
                                     where a table answers → that cell
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from finassist.answer_checks import (
    PROMPT_MARKUP,
    attribute,
    figures,
    figures_off_question,
    fix_citations,
    has_content,
    invented_names,
    is_looping,
    key_sentence,
    names_off_question,
    no_number_for_amount,
    not_covered_answer,
    only_echoes,
    question_stems,
    strip_stub,
    trim_loop,
    ungrounded_figures,
    words,
)
from finassist.domain import Hit
from finassist.tables import CURRENCY_SIGNS, MONTH, Cell, cells_of_year, years_in

# Questions about a quantity derived from cells (a change, a ratio, the highest year): no one year's cell answers.
DERIVED = re.compile(
    r"\b(?:chang\w*|increas\w*|decreas\w*|differ\w*|growth|grew|ris(?:e|en|ing)|rose|f[ae]ll\w*|declin\w*|ratio"
    r"|proportion|average|highest|lowest|compar\w*|more|less|between)\b",
    re.IGNORECASE,
)
_MONTHS = re.compile(rf"\b{MONTH}", re.IGNORECASE)
MIN_LABEL_SHARE = 0.5  # of the question's content words, the row label must be at least half
# Stopwords that make another line item: "Total other assets" is not "Total assets", "Non-GAAP" not "GAAP".
_ITEM_WORDS = frozenset({"other", "non", "not", "no"})


def _item_words(text: str) -> set[str]:
    return question_stems(text)[0] | (set(words(text)) & _ITEM_WORDS)


def table_cell(question: str, hits: Sequence[Hit]) -> tuple[int, Cell] | None:
    """(source number, cell) for a question naming one year ("What was the state licenses in 2018?") when a table
    row's label is made only of the question's words and holds at least half of them (`State licenses | 2.9 |
    2.5`): the row with the most question words, the higher-ranked source on a tie, when its table has that
    year's column. A question about a change, ratio or comparison is left to the model."""
    years = years_in(question)
    if len(years) != 1 or DERIVED.search(question):
        return None
    asked = _item_words(_MONTHS.sub(" ", question))
    best: tuple[tuple[int, int], int, Cell | None] | None = None
    for rank, hit in enumerate(hits, 1):
        for _, label_text, cell in cells_of_year(hit.text, years[0]):
            label = _item_words(label_text)
            if not label or not label <= asked or len(label) < MIN_LABEL_SHARE * len(asked):
                continue
            if (asked - label) & _ITEM_WORDS:  # the question's "other" or "non" is not in this row's label
                continue
            key = (len(label), -rank)
            if best is None or key > best[0]:
                best = (key, rank, cell)
    # The row most about the question may have no column for the year: then no other row stands in for it.
    return (best[1], best[2]) if best and best[2] is not None else None


def _states(text: str, value: str) -> bool:
    wanted = figures(value)
    if wanted:
        return any(f.matches(w) for f in figures(text) for w in wanted)
    digits = re.sub(r"[^\d.,]", "", value).strip(".,")
    return bool(digits) and re.search(rf"(?<![\d.,]){re.escape(digits)}(?!\d|[.,]\d)", text) is not None


def misread_table(text: str, question: str, hits: Sequence[Hit]) -> tuple[int, Cell] | None:
    """The table cell the question asks for, when the answer does not state it and states no figure from outside
    that table: a small model reading a row's other column (another year) or giving no figure at all. An answer
    with a figure from the prose around the table is left alone: it may answer from the text."""
    found = table_cell(question, hits)
    if found is None or _states(text, found[1].value):
        return None
    in_table = figures(found[1].table)
    outside = [f for f in figures(text) if not any(f.matches(k) for k in in_table)]
    return None if outside else found


def table_answer(rank: int, cell: Cell) -> str:
    units = cell.units
    if units[:1] in CURRENCY_SIGNS and units[:1] in cell.value:  # "$1,327.9 in millions", not "$1,327.9 $ in…"
        units = units[1:].strip()
    units = f" {units}" if units else ""
    return f"{cell.label} ({cell.column}): {cell.value}{units} [{rank}]."


def extractive_answer(question: str, hits: Sequence[Hit]) -> str:
    """The table cell the question asks for, else the key sentence quoted, with its [n]."""
    if (cell := table_cell(question, hits)) is not None:
        return table_answer(*cell)
    found = key_sentence(question, hits)
    if found is None:
        return not_covered_answer([])
    rank, sentence = found
    return f'The news says: "{sentence.rstrip()}" [{rank}]'


@dataclass
class Review:
    text: str
    notes: list[str] = field(default_factory=list)
    fallback: bool = False  # the model's answer was replaced by the extractive one


def review(answer: str, question: str, hits: Sequence[Hit]) -> Review:
    """The answer to return for `answer` generated from `hits` (numbered from 1): never empty, no stub, no loop,
    no copied prompt markup, no [n] that points nowhere; figures cited where one source states them."""
    notes: list[str] = []
    text = strip_stub(answer)
    if text != answer.strip() and text:
        notes.append("answer check: stub lead-in removed")
    copied_prompt = bool(PROMPT_MARKUP.match(text))  # it opens like a news block of the prompt: a copy of it
    if PROMPT_MARKUP.search(text):
        text = PROMPT_MARKUP.sub(" ", text).strip()
        notes.append("answer check: prompt markup removed")
    if is_looping(text):
        text = trim_loop(text)
        notes.append("answer check: repeating answer cut where it started repeating")
    text, _, dropped = fix_citations(text, len(hits))
    if dropped:
        notes.append(f"answer check: {dropped} citation(s) of sources that do not exist removed")
    problem = None
    if not has_content(text):
        problem = "empty" if not answer.strip() else "no content (stub or loop)"
    elif copied_prompt:
        problem = "a copy of the prompt's news"
    elif hits and only_echoes(text, question):
        problem = "only the question's own words"
    elif hits and (stated := figures(text)) and len(ungrounded_figures(text, hits)) == len(stated):
        problem = "figures that no source states"
    elif hits and invented_names(text, question, hits):
        problem = "names that no source mentions"
    elif hits and figures_off_question(text, question, hits):
        problem = "figures only from news not about the question"
    elif hits and names_off_question(text, question, hits):
        problem = "names only from news not about the question"
    elif hits and no_number_for_amount(text, question, hits):
        problem = "no number for a question asking for an amount"
    if problem is not None:
        done = "quoted the news" if hits else "said the news does not cover it"
        return Review(extractive_answer(question, hits), [*notes, f"answer check: {problem}; {done}"], True)
    if hits and (cell := misread_table(text, question, hits)) is not None:
        note = "answer check: not the figure of the table's column for the year asked; read the table"
        return Review(table_answer(*cell), [*notes, note], True)
    return Review(attribute(text, hits), notes)
