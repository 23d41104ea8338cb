"""Answer guards: pure checks on a generated answer and the news it was given, and the repairs they call for
(`answer_review.review` applies them in order).

Measured on SmolLM2-135M (issue 12): 5 of 17 answers were the bare stub "The answer to this question is:", several
looped ("a 1.0% increase … a 1.0% increase …"), none cited [n]. Everything here is plain text work, no model.
Whether the news covers the question at all is checked before generating, in finassist.coverage.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from finassist.domain import Hit

# --- words ---------------------------------------------------------------------------------------------------



def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9&'\-]*|\$?\d[\d,]*(?:\.\d+)?%?")
STOPWORDS = _wordset(
    "a an the and or but if of to in on at by for from with about as into than then that this these those is are "
    "was were be been being has have had do does did will would can could should may might must shall it its it's "
    "they them their there here what which who whom whose when where why how much many any some all each every "
    "no not nor so such very just also i me my we our you your he she his her him us up down out over under "
    "again more most other own same too only both few"
)
# Words of a question that name no subject: a question "What was Apple's revenue last quarter?" asks about Apple,
# and news about another company's revenue does not answer it.
GENERIC = _wordset(
    "revenue revenues sales earnings eps profit profits income loss losses margin margins quarter quarterly q1 q2 "
    "q3 q4 year annual yearly fiscal month week day today yesterday last latest recent recently current currently "
    "new next previous prior past now stock stocks share shares price prices target targets rating ratings dividend "
    "dividends payout yield buyback buybacks repurchase guidance outlook forecast forecasts estimate estimates "
    "consensus expected expectations deal deals acquisition acquisitions merger buy buying sell selling company "
    "companies firm business news report reports reported results result ceo cfo chief executive officer analyst "
    "analysts market markets investor investors jobs job layoffs cuts cut cutting raise raised raising lower lowered "
    "growth grow grew number numbers figure figures total deliveries delivery production output customers "
    "subscribers users cash debt value valuation cost costs spending capex say said says tell think going happen "
    "happened happening doing did made make announce announced announcement plan plans update updates move moves "
    "trading trade traded performance perform beat beats miss missed rate rates big biggest high low per billion "
    "million percent give gave given get got see saw expect expects provide provided show showed know keep "
    "take took come came look want need use used"
)
# Abbreviations of finance writing, as the words they stand for (lower case, as `words` gives them).
ABBREVIATIONS = {
    "ceo": "chief executive", "cfo": "chief financial officer", "coo": "chief operating officer",
    "eps": "earnings per share", "ffo": "funds from operations", "capex": "capital expenditures",
    "r&d": "research and development", "sg&a": "selling general and administrative", "ipo": "initial public offering",
}
STUB_LEAD = re.compile(
    r"^\s*(?:(?:the\s+)?(?:short\s+|final\s+)?answer(?:\s+to\s+(?:this|the|your)\s+question)?\s*(?:is|would\s+be)?"
    r"|based\s+on\s+the\s+(?:news|articles?)(?:\s+provided)?)\s*[:,\-]?\s*",
    re.IGNORECASE,
)
# [1], [1, 2], [news 1], [source 2]: the forms small models write; anything else is left as text.
CITATION = re.compile(r"\s?\[(?:(?:news|source|article)\s*)?(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]", re.IGNORECASE)
_FIGURE = re.compile(
    r"(?<![\w.])(\$)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s?(%|percent\b|billion\b|million\b|bn\b|[bm]\b)?",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’']?\s+(?=[A-Z\"“$(])|\n+")
BOILERPLATE = re.compile(
    r"benzinga pro|click here|start a free trial|photo:|read next|see also|this article was generated|"
    r"forward-looking statements|investor contact|media contact|for more information|disclaimer",
    re.IGNORECASE,
)
# The prompt's own markup, which a small model sometimes copies instead of answering (<news id="5" date=...>).
PROMPT_MARKUP = re.compile(r"</?\s*news\b[^<>]{0,300}>|<\|[^<>|]{0,40}\|>", re.IGNORECASE)
NAME = re.compile(r"(?<![\w$])([A-Z][a-z][\w&\-]*(?:'s)?)")
NOT_NAMES = _wordset(
    "what who whom which when where why how is are was were do does did has have had will would can could should "
    "tell give show list explain compare summarize the a an and or in on of for from about i please "
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday"
)


def words(text: str) -> list[str]:
    return [w.lower().removesuffix("'s").strip("'-") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w and w not in STOPWORDS and not w.replace("-", "").isdigit()]


def stem(word: str) -> str:
    """A crude stem, enough to match "reported" with "report" and "raises" with "raise" when counting overlap."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word.removesuffix("e")[:6]


def question_stems(question: str) -> tuple[set[str], set[str]]:
    """The stems of the question's content words, and of those among them that are not finance-generic words. An
    abbreviation (`ABBREVIATIONS`) brings the words it stands for, and those words bring it: "CEO" meets "chief
    executive" in the news, and "earnings per share" meets a table's "EPS"."""
    said = content_words(question)
    asked, distinct = {stem(w) for w in said}, {stem(w) for w in said if w not in GENERIC}
    spelled = " ".join(words(question))
    for short, (long, both) in _ABBREVIATION_STEMS.items():
        if short in said or long.search(spelled):
            asked |= both
            distinct |= both if short not in GENERIC else set()
    return asked, distinct


# Per abbreviation: its spelled-out words as a pattern, and the stems of both forms (made once, used per table row).
_ABBREVIATION_STEMS = {
    short: (re.compile(rf"\b{long}\b"), frozenset(stem(w) for w in content_words(f"{short} {long}")))
    for short, long in ABBREVIATIONS.items()
}


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str  # "" | "%" | "billion" | "million"

    def matches(self, other: Figure) -> bool:
        return abs(self.value - other.value) < 1e-9 and (self.unit == other.unit or "" in (self.unit, other.unit))


def figures(text: str) -> list[Figure]:
    """Money, percentages and counts with a decimal point, thousands separator, unit or $ sign: the facts an
    answer states. Bare small integers (Q3, 10-2, [1]) and years are not figures."""
    out = []
    for m in _FIGURE.finditer(CITATION.sub(" ", text)):
        dollar, whole, frac, unit = m.group(1), m.group(2), m.group(3) or "", (m.group(4) or "").lower()
        plain = whole.replace(",", "")
        if not (dollar or frac or unit or "," in whole):
            continue
        unit = {"percent": "%", "bn": "billion", "b": "billion", "m": "million"}.get(unit, unit)
        if unit in ("billion", "million") and not dollar and not frac and len(plain) == 4:
            continue  # "2027 billion" does not happen; "in 2027 b…" is a year
        out.append(Figure(float(plain + frac), unit))
    return out


# --- checks --------------------------------------------------------------------------------------------------


def strip_stub(text: str) -> str:
    """The answer without a stub lead-in ("The answer to this question is:")."""
    return STUB_LEAD.sub("", text, count=1).strip() if STUB_LEAD.match(text) else text.strip()


def has_content(text: str) -> bool:
    """At least two content words, or one and a figure: "The answer to this question is:" has none."""
    body = content_words(CITATION.sub(" ", strip_stub(text)))
    return len(body) >= 2 or (len(body) == 1 and bool(figures(text)))


def only_echoes(text: str, question: str) -> bool:
    """The answer's words are all the question's (stems), and it states no figure: "Greenbarrow's new fiscal 2027
    revenue forecast is:" to "What is Greenbarrow's new fiscal 2027 revenue forecast?" says nothing new."""
    said = {stem(w) for w in content_words(CITATION.sub(" ", strip_stub(text)))}
    return bool(said) and not figures(text) and said <= question_stems(question)[0]


# Words that make a "what" question ask for an amount ("What revenue did it report?", "What is the price target?").
AMOUNT_WORDS = (
    "revenues?|sales|earnings|eps|ffo|ebitda|profits?|income|loss(?:es)?|margins?|price|target|dividends?|payout|"
    "yield|cash|debt|valuation|costs?|expenses?|fees?|premium|rate|percentage|amount|total|assets|liabilities|"
    "capex|spending|shipments|deliveries|inflows|outflows"
)
# An answer saying the news does not give it ("The news does not say …"): maybe true, so no reason to quote a
# sentence instead. Only with the news as the subject: "The company did not provide …" says nothing of the news.
SAYS_NOT_GIVEN = re.compile(
    r"\b(?:news|articles?|sources?|reports?|texts?)\s+(?:does|did|do)\s*(?:not|n't)\s+"
    r"(?:cover|say|mention|state|give|disclose|report|provide|include)\b|\bno (?:information|figures?|numbers?)\b",
    re.IGNORECASE,
)
ASKS_AMOUNT = re.compile(rf"\bhow\s+(?:much|many)\b|\bwhat\b(?=[^?]*\b(?:{AMOUNT_WORDS})\b)", re.IGNORECASE)


def no_number_for_amount(text: str, question: str, hits: Sequence[Hit]) -> bool:
    """A question asking for an amount ("how much", "how many", "what revenue …") answered without a single digit
    while the sentence most about it has one: the answer talks around the amount the news states."""
    if not ASKS_AMOUNT.search(question) or re.search(r"\d", CITATION.sub(" ", text)) or SAYS_NOT_GIVEN.search(text):
        return False
    found = key_sentence(question, hits)
    return found is not None and bool(re.search(r"\d", found[1]))


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def is_looping(text: str, n: int = 4, max_repeats: int = 2, max_repeated_share: float = 0.3) -> bool:
    """An n-gram said more than `max_repeats` times, or more than `max_repeated_share` of all n-grams repeats."""
    grams = _ngrams(words(text), n)
    if not grams:
        return False
    counts = Counter(grams)
    repeated = sum(c - 1 for c in counts.values() if c > 1)
    return max(counts.values()) > max_repeats or (len(grams) >= 12 and repeated / len(grams) > max_repeated_share)


def trim_loop(text: str, n: int = 4, max_repeats: int = 2) -> str:
    """The answer without its loop: sentences said before (or their cut-off starts) are dropped; a loop left inside
    a sentence is cut where it starts its second pass (the first pass of a loop often holds the whole answer)."""
    parts = re.split(f"({_SENTENCE_END.pattern})", text)
    seen_sentences: set[str] = set()
    kept = []
    for i in range(0, len(parts), 2):  # sentences at even places, what separated them at odd ones
        key = " ".join(words(parts[i]))
        if key and any(seen.startswith(key) for seen in seen_sentences):  # said before, or its cut-off start
            continue
        seen_sentences.add(key)
        kept.append(parts[i] + (parts[i + 1] if i + 1 < len(parts) else ""))
    text = "".join(kept).strip()
    spans = [(m.start(), m.group(0).lower()) for m in _WORD.finditer(text)]
    grams = [tuple(w for _, w in spans[i : i + n]) for i in range(len(spans) - n + 1)]
    counts = Counter(grams)
    first: dict[tuple[str, ...], int] = {}
    for i, gram in enumerate(grams):
        if gram in first and counts[gram] > max_repeats:
            head = text[: spans[i][0]].rstrip(" ,;:-–—")
            end = max(head.rfind(". "), head.rfind(".\n"))
            return (head[: end + 1] if end > len(head) // 2 else head).strip()
        first.setdefault(gram, i)
    return text


def fix_citations(text: str, n_sources: int) -> tuple[str, list[int], int]:
    """[n] markers normalised to [n], and those pointing to no source (n < 1 or n > n_sources) removed: the text,
    the source numbers it cites in order, and how many markers pointed nowhere."""
    cited: list[int] = []
    dropped = 0

    def keep(m: re.Match) -> str:
        nonlocal dropped
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        valid = [x for x in dict.fromkeys(nums) if 1 <= x <= n_sources]
        dropped += len(set(nums)) - len(valid)
        cited.extend(x for x in valid if x not in cited)
        lead = " " if m.group(0)[:1].isspace() else ""
        return lead + "".join(f"[{x}]" for x in valid) if valid else ""

    out = CITATION.sub(keep, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", out).strip(), cited, dropped


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def source_text(hit: Hit) -> str:
    return f"{hit.headline}.\n{hit.text}"


def ungrounded_figures(text: str, hits: Sequence[Hit]) -> list[Figure]:
    """Figures in the answer that no source states (invented, or computed by the model)."""
    known = [f for h in hits for f in figures(source_text(h))]
    return [f for f in figures(text) if not any(f.matches(k) for k in known)]


def names(text: str) -> set[str]:
    """The capitalised words of `text` that can be names (people, companies, places, products)."""
    found = {m.group(1).removesuffix("'s") for m in NAME.finditer(text)}
    return {n for n in found if n.lower() not in NOT_NAMES and n.lower() not in STOPWORDS}


def _inner_names(text: str) -> set[str]:
    """The names of `text` not counting a sentence's first word (which may be any capitalised word)."""
    inside = {m.group(1).removesuffix("'s") for s in sentences(text) for m in NAME.finditer(s, 1)}
    return names(text) & inside


def _mentions(text: str, name: str) -> bool:
    """`name` in `text`, in any case, from a word start (possessives and plurals count)."""
    return re.search(rf"(?<!\w){re.escape(name)}", text, re.IGNORECASE) is not None


def invented_names(text: str, question: str, hits: Sequence[Hit]) -> set[str]:
    """Names the answer gives that neither the question nor any source mentions: a person or company the model
    made up."""
    known = " ".join([question, *(source_text(h) for h in hits)])
    return {n for n in _inner_names(text) if not _mentions(known, n)}


def _support(sentence: str, hits: Sequence[Hit], per_source: list[list[Figure]]) -> list[int]:
    """Per source, how many of the sentence's figures it states; for a sentence without figures, how many of its
    names it mentions, counted only where that tells the sources apart (a name every source mentions says
    nothing about which one the sentence comes from)."""
    if stated := figures(sentence):
        return [sum(any(f.matches(k) for k in known) for f in stated) for known in per_source]
    said = names(sentence)
    texts = [source_text(h) for h in hits]
    support = [sum(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", t) is not None for n in said) for t in texts]
    return support if len(hits) == 1 or max(support) > min(support) else [0] * len(hits)


def attribute(text: str, hits: Sequence[Hit]) -> str:
    """Add [n] to each sentence that cites nothing but states a figure that source n states (the source stating
    most of its figures, the higher-ranked on a tie), or, stating none, names what source n names and the other
    sources do not all name; other sentences stay as they are, and so does the layout."""
    if not hits:
        return text
    per_source = [figures(source_text(h)) for h in hits]
    parts = re.split(f"({_SENTENCE_END.pattern})", text)
    for i in range(0, len(parts), 2):  # sentences at even places, what separated them at odd ones
        sentence = parts[i].rstrip()
        if not sentence or CITATION.search(sentence):
            continue
        support = _support(sentence, hits, per_source)
        best = max(range(len(hits)), key=lambda j: (support[j], -j))
        if support[best]:
            body, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!?" else (sentence, "")
            parts[i] = f"{body} [{best + 1}]{end}" + parts[i][len(sentence):]
    return "".join(parts)


@dataclass(frozen=True)
class Candidate:
    """A sentence of the given news that may answer the question, and how much of the question it is about."""

    rank: int  # its source's number in the prompt
    sentence: str
    about: float  # question words in it, +0.5 for a figure, -0.05 per rank: how much it is about the question
    headline: bool


def candidates(question: str, hits: Sequence[Hit]) -> list[Candidate]:
    """The sentences of the news that can answer the question: not boilerplate, not fragments, and with one of the
    question's distinctive (non-finance-generic) words when it has some ("revenue" alone is no sign)."""
    asked, distinct = question_stems(question)
    out = []
    for rank, hit in enumerate(hits, 1):
        for sentence in sentences(source_text(hit)):
            if len(sentence) < 20 or BOILERPLATE.search(sentence):
                continue
            said = {stem(w) for w in content_words(sentence)}
            if distinct and not distinct & said:
                continue  # shares only words like "revenue" or "quarter" with the question: not about it
            about = len(asked & said) + (0.5 if figures(sentence) else 0.0) - 0.05 * rank
            out.append(Candidate(rank, sentence, about, sentence.rstrip(".") == hit.headline.strip().rstrip(".")))
    return out


def key_sentence(question: str, hits: Sequence[Hit]) -> tuple[int, str] | None:
    """(source number, sentence): the candidate most about the question, a figure breaking ties toward facts, a
    higher-ranked source the rest; the body over the headline (a headline sums up a body sentence that says more:
    it wins only with two more question words)."""
    found = candidates(question, hits)
    if not found:
        return None
    best = max(found, key=lambda c: (c.about - (1.5 if c.headline else 0.0), -c.rank))
    sentence = best.sentence if len(best.sentence) <= 400 else best.sentence[:397].rsplit(" ", 1)[0] + "…"
    return best.rank, sentence


def figures_off_question(text: str, question: str, hits: Sequence[Hit], slack: float = 1.0) -> bool:
    """The answer states figures, and none of them is in a sentence about the question (one within `slack`
    question words of the sentence most about it): a small model copying the numbers of the wrong article, or of
    the right article's wrong line, next to the question's words."""
    stated = figures(text)
    found = candidates(question, hits)
    if not stated or not found:
        return False
    top = max(c.about for c in found)
    near = [f for c in found if c.about >= top - slack for f in figures(c.sentence)]
    return not any(f.matches(k) for f in stated for k in near)


def names_off_question(text: str, question: str, hits: Sequence[Hit], slack: float = 1.0) -> bool:
    """The answer states no figure and names people or companies the question does not, none of them in a sentence
    about the question (within `slack` of the one most about it): the right article's wrong person, or a company
    from another line of it ("Which company is Cloudnook buying?" answered with the broker that upgraded it)."""
    if figures(text):
        return False  # figures are checked by figures_off_question
    new = {n for n in _inner_names(text) if not _mentions(question, n)}
    found = candidates(question, hits)
    if not new or not found:
        return False
    top = max(c.about for c in found)
    near = " ".join(c.sentence for c in found if c.about >= top - slack)
    return not any(_mentions(near, n) for n in new)


def not_covered_answer(subjects: Sequence[str]) -> str:
    if subjects:
        return f"The news I have does not cover {join_names(subjects)}, so I cannot answer that from it."
    return "The news I have does not cover this question, so I cannot answer it from the news."


def not_covered_lead(subjects: Sequence[str]) -> str:
    """The first sentence of an answer whose question is only partly covered."""
    return f"The news I have does not cover {join_names(subjects)}."


def join_names(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
