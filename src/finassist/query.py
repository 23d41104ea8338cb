"""What a question is about: its companies (tickers) and its period, and what a filing's title says. Pure.

The period becomes a `created_at` window for news and fiscal year(s)/quarter(s) for filing-like documents. News
about a fiscal period (its results, its filing) appears after the period ends, so a fiscal period's news window
runs on for `REPORTING_LAG` after its end; a calendar phrase ("in 2022", "yesterday") is the plain window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources

from finassist.domain import SYMBOL_PATTERN
from finassist.symbols import symbols_in
from finassist.textsearch import FISCAL_YEAR, QUARTER, quarter_of, year_of

REPORTING_LAG = timedelta(days=90)  # 10-Ks are due 60-90 days after the fiscal year ends, 10-Qs 40-45


@dataclass(frozen=True)
class QuestionScope:
    tickers: tuple[str, ...] = ()  # named tickers, plus their other share classes (GOOGL → GOOG)
    companies: tuple[str, ...] = ()  # the names as the alias table spells them ("Google", "Facebook")
    since: datetime | None = None  # created_at window for news: [since, until); None = open
    until: datetime | None = None
    fiscal_years: tuple[int, ...] = ()
    quarters: tuple[int, ...] = ()
    # The part of the window from calendar phrases only ("yesterday", "this week", "in 2022"): safe as a news
    # filter. A fiscal period is about what was reported, which the news may discuss long after.
    news_since: datetime | None = None
    news_until: datetime | None = None

    @property
    def has_period(self) -> bool:
        return self.since is not None or self.until is not None

    @property
    def has_news_window(self) -> bool:
        return self.news_since is not None or self.news_until is not None


@dataclass(frozen=True)
class FilingMetadata:
    company: str
    year: int
    form: str  # "10-K", "10-Q", "20-F", "8-K", "40-F", "annual report"
    page: int | None = None


@cache
def share_classes() -> dict[str, tuple[str, ...]]:
    """ticker -> its other listed share classes, from symbols.json's "_share_classes"."""
    raw = json.loads(resources.files("finassist").joinpath("symbols.json").read_text()).get("_share_classes", {})
    out: dict[str, tuple[str, ...]] = {}
    for ticker, others in raw.items():
        if ticker.startswith("_"):
            continue
        if not isinstance(others, list) or not all(re.match(SYMBOL_PATTERN, t) for t in [ticker, *others]):
            raise ValueError(f"symbols.json _share_classes: {ticker!r} -> {others!r} is not ticker -> [tickers]")
        out[ticker] = tuple(others)
    return out


# --- periods -------------------------------------------------------------------------------------------------

_NUM = r"(?![\w$%]|[.,]\d)"
_CALENDAR_YEAR = re.compile(rf"\b(in|during|for|since|through|until|of)\s+((?:19|20)\d\d){_NUM}", re.IGNORECASE)
_BARE_YEAR = re.compile(rf"(?<![\w$€£.,/\-])((?:19|20)\d\d){_NUM}(?!-\d)")
_RELATIVE = re.compile(
    r"\b(?:(last|previous|prior|past|this|current|next)\s+(quarter|year|month|week)"
    r"|(today|yesterday|year[\s\-]to[\s\-]date|ytd)"
    r"|(?:past|last)\s+(\d{1,3})\s+(days?|weeks?|months?))\b",
    re.IGNORECASE,
)


def _quarter_start(year: int, q: int) -> datetime:
    return datetime(year, 3 * q - 2, 1, tzinfo=UTC)


def _next_quarter(year: int, q: int) -> tuple[int, int]:
    return (year + 1, 1) if q == 4 else (year, q + 1)


def _current_quarter(now: datetime) -> tuple[int, int]:
    return now.year, (now.month - 1) // 3 + 1


def _latest(q: int, now: datetime) -> int:
    """The year of the latest quarter `q` that has begun by `now` ("Q3" asked in February means last year's)."""
    return now.year if _quarter_start(now.year, q) <= now else now.year - 1


@dataclass
class _Found:
    windows: list[tuple[datetime | None, datetime | None]]
    years: list[int]
    quarters: list[int]
    calendar: list[tuple[datetime | None, datetime | None]] = field(default_factory=list)

    def plain(self, since: datetime | None, until: datetime | None) -> None:
        """A calendar window: a news filter as it stands."""
        self.windows.append((since, until))
        self.calendar.append((since, until))

    def fiscal_quarter(self, year: int, q: int) -> None:
        ny, nq = _next_quarter(year, q)
        self.windows.append((_quarter_start(year, q), _quarter_start(ny, nq) + REPORTING_LAG))
        self.years.append(year)
        self.quarters.append(q)

    def fiscal_year(self, year: int) -> None:
        self.windows.append((datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC) + REPORTING_LAG))
        self.years.append(year)


def _relative(m: re.Match[str], now: datetime, found: _Found) -> None:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    which, unit, single, count, count_unit = (g.lower() if g else g for g in m.groups())
    if single == "today":
        found.plain(day, None)
    elif single == "yesterday":
        found.plain(day - timedelta(days=1), day)
    elif single is not None:  # year to date
        found.plain(datetime(now.year, 1, 1, tzinfo=UTC), None)
        found.years.append(now.year)
    elif count is not None:
        days = {"day": 1, "week": 7, "month": 30}[count_unit.rstrip("s")] * int(count)
        found.plain(now - timedelta(days=days), None)
    elif unit in ("week", "month"):
        found.plain(now - timedelta(days=7 if unit == "week" else 30), None)
    elif unit == "quarter":
        year, q = _current_quarter(now)
        if which in ("last", "previous", "prior", "past"):
            year, q = (year - 1, 4) if q == 1 else (year, q - 1)
            found.fiscal_quarter(year, q)
        elif which == "next":
            found.quarters.append(_next_quarter(year, q)[1])
            found.years.append(_next_quarter(year, q)[0])
        else:
            found.windows.append((_quarter_start(year, q), None))  # fiscal: the quarter's news comes later
            found.years.append(year)
            found.quarters.append(q)
    elif which in ("last", "previous", "prior", "past"):  # year
        found.fiscal_year(now.year - 1)
    elif which == "next":
        found.years.append(now.year + 1)
    else:
        found.plain(datetime(now.year, 1, 1, tzinfo=UTC), None)
        found.years.append(now.year)


def _period(question: str, now: datetime) -> _Found:
    found = _Found([], [], [])
    taken: list[tuple[int, int]] = []

    def free(m: re.Match[str]) -> bool:
        return not any(s < m.end() and m.start() < e for s, e in taken)

    for m in QUARTER.finditer(question):
        q, year = quarter_of(m)
        found.fiscal_quarter(year if year is not None else _latest(q, now), q)
        taken.append(m.span())
    for m in FISCAL_YEAR.finditer(question):
        if free(m):
            found.fiscal_year(int(year_of(m.group(1) or m.group(2))))
            taken.append(m.span())
    for m in _CALENDAR_YEAR.finditer(question):
        if free(m):
            year = int(m.group(2))
            end = None if m.group(1).lower() == "since" else datetime(year + 1, 1, 1, tzinfo=UTC)
            start = None if m.group(1).lower() in ("through", "until") else datetime(year, 1, 1, tzinfo=UTC)
            found.plain(start, end)
            found.years.append(year)
            taken.append(m.span())
    for m in _BARE_YEAR.finditer(question):
        if free(m):
            found.fiscal_year(int(m.group(1)))
            taken.append(m.span())
    for m in _RELATIVE.finditer(question):
        if free(m):
            _relative(m, now, found)
            taken.append(m.span())
    return found


def parse_question(question: str, aliases: dict[str, str], now: datetime) -> QuestionScope:
    """The companies and period a question names; the period relative to `now` (UTC)."""
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    named = symbols_in(question, aliases)
    tickers = list(named)
    for t in named:
        tickers += [o for o in share_classes().get(t, ()) if o not in tickers]
    companies = [
        name for name in aliases if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", question, flags=re.IGNORECASE)
    ]
    found = _period(question, now)
    since, until = _union(found.windows)
    news_since, news_until = _union(found.calendar)
    return QuestionScope(
        tickers=tuple(tickers),
        companies=tuple(sorted(companies, key=lambda n: question.lower().find(n.lower()))),
        since=since,
        until=until,
        fiscal_years=tuple(dict.fromkeys(found.years)),
        quarters=tuple(dict.fromkeys(found.quarters)),
        news_since=news_since,
        news_until=news_until,
    )


def _union(windows: list[tuple[datetime | None, datetime | None]]) -> tuple[datetime | None, datetime | None]:
    """The smallest window holding all of `windows` (None: open on that side); (None, None) for none."""
    if not windows:
        return None, None
    starts = [s for s, _ in windows]
    ends = [e for _, e in windows]
    return (
        None if None in starts else min(s for s in starts if s is not None),
        None if None in ends else max(e for e in ends if e is not None),
    )


# --- filing titles -------------------------------------------------------------------------------------------

_FORMS = r"10[\-_ ]?K|10[\-_ ]?Q|20[\-_ ]?F|40[\-_ ]?F|8[\-_ ]?K|annual[_ ]report"
_SEP = r"[_\s\-]+"
_FILING = re.compile(
    rf"^\s*(?P<company>[A-Za-z][A-Za-z0-9.&]{{0,15}}){_SEP}"
    rf"(?:(?P<year>(?:19|20)\d\d){_SEP}(?P<form>{_FORMS})|(?P<form2>{_FORMS}){_SEP}(?P<year2>(?:19|20)\d\d))"
    rf"(?![A-Za-z0-9])(?:{_SEP}(?:page|p\.?){_SEP}?(?P<page>\d{{1,5}}))?",
    re.IGNORECASE,
)


def filing_metadata(title: str) -> FilingMetadata | None:
    """ "ACME_2021_10K page 12" → ACME, 2021, 10-K, page 12; also "ACME 10-K 2021", "acme_2021_annual_report".
    None when the title does not read as company + year + form."""
    m = _FILING.match(title)
    if m is None:
        return None
    raw_form = (m.group("form") or m.group("form2")).upper().replace("_", " ")
    if raw_form.startswith("ANNUAL"):
        form = "annual report"
    else:
        digits = re.match(r"\d+", raw_form).group(0)  # type: ignore[union-attr]
        form = f"{digits}-{raw_form[-1]}"
    page = m.group("page")
    return FilingMetadata(
        m.group("company"), int(m.group("year") or m.group("year2")), form, int(page) if page else None
    )


# --- follow-up questions -------------------------------------------------------------------------------------

_FOLLOW_UP_NOUNS = (
    "deal|acquisition|merger|takeover|purchase|transaction|company|firm|bank|lender|stock|shares?|business|buyback|"
    "dividend|payout|offer|bid|news|report|results|earnings|quarter|guidance|outlook|forecast|move|announcement|"
    "lawsuit|suit|case|product|launch|card|downgrade|upgrade|plan|ceo|target|one|ones"
)
# A question that points back: a pronoun for a company or its people, "that deal", or an opening "And ...".
_FOLLOW_UP = re.compile(
    rf"\b(?:they|their|theirs|them|its|he|she|his|her|him)\b"
    rf"|\b(?:that|this|these|those|the)\s+(?:\w+\s+)?(?:{_FOLLOW_UP_NOUNS})\b"
    r"|^\s*(?:and|also|what about|how about|why|so)\b[^?]{0,40}\?\s*$",
    re.IGNORECASE,
)
MAX_CARRIED_TURNS = 3  # user turns
MAX_ANSWER_CHARS = 300  # of an assistant turn carried along: its opening names the subject


@dataclass(frozen=True)
class ConversationQuery:
    query: str  # what retrieval searches with
    about: str  # where its tickers are read from: the question and the carried user turns (not the answers)
    carried: int = 0  # earlier turns appended


def with_conversation(question: str, history: Sequence[tuple[str, str]], aliases: dict[str, str]) -> ConversationQuery:
    """The question as retrieval should read it in a conversation. `history`: earlier (role, text) turns, oldest
    first. A follow-up that names no company of its own ("How big is that deal and how will they pay for it?") gets
    the earlier turns appended, back to the latest user turn that names a company (at most `MAX_CARRIED_TURNS`
    user turns; an answer's opening only), so their companies filter and their subject searches. A question that
    names its own company, or does not point back, stands alone."""
    alone = ConversationQuery(question, question)
    if not history or symbols_in(question, aliases) or not _FOLLOW_UP.search(question):
        return alone
    texts: list[str] = []
    users: list[str] = []
    for role, text in reversed(history):
        text = text.strip()
        if not text:
            continue
        if role == "assistant":
            texts.append(text[:MAX_ANSWER_CHARS])
            continue
        texts.append(text)
        users.append(text)
        if symbols_in(text, aliases) or len(users) >= MAX_CARRIED_TURNS:
            break
    if not users:
        return alone
    return ConversationQuery(
        "\n".join([question.strip(), *reversed(texts)]), "\n".join([question.strip(), *reversed(users)]), len(texts)
    )
