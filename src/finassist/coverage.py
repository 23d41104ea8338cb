"""Does the news found cover the question? The subjects a question names (tickers, known company names, capitalised
names) against the news retrieved for it: a pure check, run before generating, so that "What was Apple's revenue
last quarter?" over news without Apple says so instead of presenting another company's numbers as Apple's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from finassist.answer_checks import GENERIC, NAME, NOT_NAMES, STOPWORDS, join_names, source_text, stem, words
from finassist.domain import Hit
from finassist.symbols import symbols_in


@dataclass
class Coverage:
    missing: list[str] = field(default_factory=list)  # subjects the question names that no given news is about
    covered: bool = True  # False: nothing in the news answers the question; say so instead of generating

    @property
    def note(self) -> str:
        return f"the news does not cover {join_names(self.missing)}" if self.missing else "no news to answer from"


def names_in(question: str) -> list[str]:
    """Capitalised words that read as names ("Apple's" → "Apple"), not question words, months or finance words
    ("Buy", "Revenue"); runs of them ("Oxbow Industries") are one name."""
    out: list[str] = []
    last_end = -2
    for m in NAME.finditer(question):
        word = m.group(1).removesuffix("'s")
        if word.lower() in NOT_NAMES | GENERIC | STOPWORDS:  # "What", "Revenue" in a Title Case question, "Buy"
            last_end = -2
            continue
        if out and m.start() == last_end + 1:
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
        last_end = m.end() - (2 if m.group(1).endswith("'s") else 0)
    return out


def _mentions(hit: Hit, name: str) -> bool:
    """The hit has every word of the name ("Oxbow Industries": not just "industries")."""
    text = source_text(hit)
    return all(re.search(rf"(?<!\w){re.escape(part)}(?!\w)", text, re.IGNORECASE) for part in name.split())


_CLAUSE = re.compile(r"\s*(?:[,;]|\band\b|\bor\b|\bas well as\b|\bplus\b)\s*", re.IGNORECASE)


def coverage(question: str, hits: Sequence[Hit], aliases: dict[str, str]) -> Coverage:
    """Whether the news found can answer the question. The subjects it names are tickers and known company names
    (missing: no hit is tagged with it) and capitalised names (missing: no hit mentions it). When the news has one
    of them, only missing tickers are reported (a capitalised word is a weaker sign). When it has none, and no
    clause of the question without a subject has a distinctive word in the news ("and in frozen pizza"), the news
    does not cover it."""
    if not hits:
        return Coverage([], covered=False)
    tagged = {s.upper() for h in hits for s in h.symbols}
    tickers = symbols_in(question, aliases)
    # A ticker (or a known company name) is a subject for sure; any capitalised word only may be one.
    said = {t: [n for n, s in aliases.items() if s.upper() == t and re.search(
        rf"(?<!\w){re.escape(n)}(?!\w)", question, re.IGNORECASE)] for t in tickers}
    missing = [f"{said[t][0]} ({t})" if said[t] else t for t in tickers if t not in tagged]
    subject_words = {w for t in tickers for w in words(" ".join([t, *said[t]]))}
    names = [n for n in names_in(question) if not set(words(n)) & subject_words]
    unmentioned = [n for n in names if not any(_mentions(h, n) for h in hits)]
    subject_words |= {w for n in names for w in words(n)}
    if len(tickers) + len(names) > len(missing) + len(unmentioned):  # the news has one of the subjects
        return Coverage(missing, covered=True)
    missing += unmentioned
    if not missing:
        return Coverage()
    # Another part of the question may ask about something else: "... at $ZZZZ and in frozen pizza?". Words in the
    # missing subject's own clause ("How many vehicles did Tesla deliver?") ask about that subject, not the news.
    news = " ".join(words(" ".join(source_text(h) for h in hits)))
    for clause in _CLAUSE.split(question):
        clause_words = set(words(clause))
        if clause_words & subject_words:
            continue
        rest = [w for w in clause_words if w not in GENERIC and w not in STOPWORDS and len(w) > 2]
        if any(re.search(rf"(?<!\w){re.escape(stem(w))}", news) for w in rest):
            return Coverage(missing, covered=True)
    return Coverage(missing, covered=False)
