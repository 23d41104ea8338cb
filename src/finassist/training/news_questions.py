"""Questions that follow the news: besides the fixed question set, one question per fresh article, about the company
it names and the event its headline reports, so each dataset version covers what is new in the feature store.

Pure: articles (their first chunk, as the store's `latest` gives them) in, `Question`s out. A question's id and text
depend only on the article's company and event, so the same news always gives the same question, and the train/eval
split (by question text, `dataset.split_by_question`) keeps a question on the side it fell on in every version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from finassist.domain import Hit
from finassist.training.questions import Question, QuestionSet, Topic, normalise_question

# The event a headline reports -> the question an investor would ask about it. First match wins: a "dividend" headline
# that also says "Q3" is about the dividend.
EVENTS: tuple[tuple[re.Pattern[str], Topic, str], ...] = (
    (re.compile(r"\bdividends?\b", re.I), Topic.STOCKS, "What did {name} announce about its dividend?"),
    (re.compile(r"\b(buybacks?|repurchases?)\b", re.I), Topic.STOCKS,
     "How large is the share buyback {name} announced?"),
    (re.compile(r"\b(guidance|outlook|forecasts?)\b", re.I), Topic.EARNINGS,
     "What outlook did {name} give, and how does it compare with before?"),
    (re.compile(r"\b(EPS|earnings|revenue|sales|results|Q[1-4]|quarterly|profit|loss)\b", re.I), Topic.EARNINGS,
     "What were the latest results of {name}, and did they beat estimates?"),
    (re.compile(r"\b(acquires?|acquisition|merger|merges?|takeover|to buy|buys|deal)\b", re.I), Topic.STOCKS,
     "What deal did {name} announce, and what are its terms?"),
    (re.compile(r"\b(upgrades?|downgrades?|price target|initiates?|outperform|underperform|overweight|underweight)\b",
                re.I), Topic.STOCKS, "Why did analysts change their view on {name}, and what is their target?"),
    (re.compile(r"\b(recalls?|lawsuits?|sued|probes?|investigations?|fines?|fined|settles?|settlement)\b", re.I),
     Topic.RISK, "What risk does the latest news pose for {name} shareholders?"),
    (re.compile(r"\b(layoffs?|job cuts|cuts? jobs|restructuring)\b", re.I), Topic.RISK,
     "Why is {name} cutting jobs, and what does it save?"),
)
DEFAULT_EVENT = (Topic.STOCKS, "What is the latest news about {name}, and why does it matter for the stock?")
_NAME_WORD = re.compile(r"^[A-Z][\w&.'-]*$")
# Title-case headline words that are not names: verbs of news headlines and words around figures.
_NOT_NAME = frozenset("""
Q1 Q2 Q3 Q4 FY EPS Shares Stock Stocks To Is Are Will And Or Of On In For At As By With From After Amid Over Its
Reports Reported Announces Says Said Raises Raised Lifts Hikes Boosts Sets Cuts Slashes Trims Lowers Beats Misses
Tops Posts Sees Expects Plans Launches Unveils Completes Agrees Signs Names Appoints Hits Jumps Falls Drops Rises Soars
Plunges Surges Slides Gains Climbs Sinks Tumbles Rallies Reaffirms Maintains Initiates Upgrades Downgrades Files Gets
Wins Receives Prices Declares Approves Delays Halts Resumes Opens Closes Buys Sells Acquires Confirms Ends Extends
CEO CFO COO CTO Chairman President Founder Analyst Analysts Report Talks Vs Why What How When Who Which
""".split())  # noqa: SIM905 - a word list reads best as words


def company_name(hit: Hit, ticker: str, aliases: dict[str, str]) -> str:
    """How a person names the article's company, always with the ticker as a cashtag (which retrieval filters on):
    a known alias of the ticker; else the headline's name that starts like the ticker ("Morgan Stanley Downgrades
    Brookward" is about Brookward for $BKWD), its words capitalised in the article's prose too when it has some
    (headlines capitalise their verbs); else the cashtag alone."""
    known = [name for name, t in aliases.items() if t == ticker]
    if known:
        return f"{max(known, key=len)} (${ticker})"
    body = f"{hit.summary} {hit.text.replace(hit.headline, ' ')}"
    prose = set(re.findall(r"\b[A-Z][\w&'-]*", body)) if len(body.split()) >= 8 else None
    runs: list[list[str]] = [[]]
    for word in hit.headline.split():
        word = word.strip(".,:;!?\"()")
        if (not _NAME_WORD.match(word) or word in _NOT_NAME or word.upper() == ticker
                or any(pattern.fullmatch(word) for pattern, _, _ in EVENTS)
                or (prose is not None and word.removesuffix("'s") not in prose)):  # prose writes verbs lower-case
            runs.append([])
        else:
            runs[-1].append(word.removesuffix("'s"))
    for run in runs:
        if run and run[0][0].upper() == ticker[0]:
            return f"{' '.join(run[:3])} (${ticker})"
    return f"${ticker}"


def headline_symbol(hit: Hit, aliases: dict[str, str]) -> str:
    """The article's ticker its headline is about (a feed tags related companies too): the first whose ticker or
    known name the headline says, else the first tag."""
    headline = hit.headline.lower()
    for ticker in hit.symbols:
        names = [ticker, *(name for name, t in aliases.items() if t == ticker)]
        if any(re.search(rf"(?<!\w){re.escape(n.lower())}(?!\w)", headline) for n in names):
            return ticker
    return hit.symbols[0]


def question_for(hit: Hit, aliases: dict[str, str]) -> tuple[Topic, str] | None:
    """The question the article answers, or None for news that names no company (macro news has the fixed set)."""
    if not hit.symbols:
        return None
    name = company_name(hit, headline_symbol(hit, aliases), aliases)
    text = f"{hit.headline} {hit.summary}"
    for pattern, topic, template in EVENTS:
        if pattern.search(text):
            return topic, template.format(name=name)
    topic, template = DEFAULT_EVENT
    return topic, template.format(name=name)


def news_questions(articles: Sequence[Hit], questions: QuestionSet, aliases: dict[str, str],
                   limit: int) -> list[Question]:
    """Up to `limit` new questions about `articles` (newest first), none repeating another or the fixed set's; each
    asked by one of the set's personas (chosen by the question, so it is stable too)."""
    seen = {normalise_question(q.question) for q in questions.questions}
    used_ids = {q.id for q in questions.questions}
    personas = [p.id for p in questions.personas]
    out: list[Question] = []
    for hit in articles:
        if len(out) >= limit:
            break
        found = question_for(hit, aliases)
        if found is None or normalise_question(found[1]) in seen:
            continue
        topic, text = found
        seen.add(normalise_question(text))
        digest = int(hashlib.sha256(normalise_question(text).encode()).hexdigest(), 16)
        number = 900_000 + digest % 100_000  # q9xxxxx: apart from hand-written ids (q001...)
        while f"q{number}" in used_ids:
            number = 900_000 + (number - 900_000 + 1) % 100_000
        used_ids.add(f"q{number}")
        out.append(Question(id=f"q{number}", persona=personas[digest % len(personas)], topic=topic, question=text))
    return out


def with_news_questions(questions: QuestionSet, articles: Sequence[Hit], aliases: dict[str, str], limit: int,
                        fixed_limit: int | None = None) -> QuestionSet:
    """The fixed set (its first `fixed_limit` questions) plus up to `limit` questions about the newest articles."""
    fixed = questions.questions[:fixed_limit] if fixed_limit else questions.questions
    base = QuestionSet(personas=questions.personas, questions=fixed)
    return QuestionSet(personas=questions.personas, questions=[*fixed, *news_questions(articles, base, aliases, limit)])
