"""The retriever shared by inference and training: embed a query, search the feature store (dense, BM25 or both
fused, as FINASSIST_RETRIEVAL_MODE says), one hit per article."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from finassist.config import Settings
from finassist.domain import Hit
from finassist.embed import Embedder
from finassist.query import QuestionScope, parse_question, with_conversation
from finassist.store import SearchFilter, SearchMode, VectorStore, search_mode
from finassist.symbols import symbols_in

MAX_FETCH = 1_000
Bonus = Callable[[Hit], float]


def best_per_article(hits: list[Hit], k: int) -> list[Hit]:
    """Keep each article's best-scoring chunk, best first, at most k."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.article_id not in best or hit.score > best[hit.article_id].score:
            best[hit.article_id] = hit
    return sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]


def prefer_recent(
    hits: list[Hit], now: datetime, weight: float, half_life_hours: float, bonus: Bonus | None = None
) -> list[Hit]:
    """Re-rank by cosine score + a freshness bonus: `weight` for a story published now, halving every
    `half_life_hours` (+ `bonus(hit)`, when given). Scores stay the similarity; only the order changes."""
    extra = bonus or (lambda _: 0.0)
    if weight <= 0:
        return sorted(hits, key=lambda h: h.score + extra(h), reverse=True) if bonus else list(hits)
    if half_life_hours <= 0:
        raise ValueError("half_life_hours must be positive")

    def utc(ts: datetime) -> datetime:
        # A naive time (a hand-built Hit, a caller's `now`) is UTC, as everywhere here; mixing them would raise.
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts

    now = utc(now)

    def boosted(hit: Hit) -> float:
        age_h = max(0.0, (now - utc(hit.created_at)).total_seconds() / 3600)
        return hit.score + weight * 0.5 ** (age_h / half_life_hours) + extra(hit)

    return sorted(hits, key=boosted, reverse=True)


def filing_bonus(scope: QuestionScope, question: str, boost: float) -> Bonus | None:
    """`boost` for each of a filing's fiscal year and company that the question names (a filing's other years'
    pages read almost the same: the title is what tells them apart). None when the bonus cannot apply."""
    if boost <= 0:
        return None

    def names(company: str) -> bool:
        return company in scope.tickers or re.search(rf"(?<!\w){re.escape(company)}(?!\w)", question, re.I) is not None

    def bonus(hit: Hit) -> float:
        f = hit.filing
        if f is None:
            return 0.0
        return boost * ((f.fiscal_year in scope.fiscal_years) + names(f.company))

    return bonus


class Retriever:
    def __init__(self, store: VectorStore, embedder: Embedder, how: SearchMode | None = None):
        """`how`: retrieval mode and fusion; default: the configured one (FINASSIST_RETRIEVAL_*)."""
        self.store = store
        self.embedder = embedder
        self.how = how if how is not None else search_mode(Settings())

    def retrieve(
        self,
        query: str,
        k: int = 5,
        symbols: list[str] | tuple[str, ...] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        per_article: bool = True,
        vector: list[float] | None = None,
    ) -> list[Hit]:
        """Top-k hits for `query`; with `per_article` (default) at most one hit, the best chunk, per article.
        `vector`: the query's embedding when the caller has it (`query_vector`), so a second search does not
        embed the same text again."""
        if k < 1:
            raise ValueError("k must be at least 1")
        query = query.strip()
        if not query:
            raise ValueError("query is empty")
        flt = SearchFilter(tuple(s.strip().upper() for s in symbols if s.strip()), since, until)
        if vector is None:
            vector = self.query_vector(query)

        def search(limit: int) -> list[Hit]:
            return self.store.search(vector, limit, flt, text=query, how=self.how)

        if not per_article:
            return search(k)
        # Articles have several chunks: over-fetch, and widen until k distinct articles or the store runs dry.
        limit = min(k * 5, MAX_FETCH)
        while True:
            hits = search(limit)
            best = best_per_article(hits, k)
            if len(best) >= k or len(hits) < limit or limit >= MAX_FETCH:
                return best
            limit = min(limit * 4, MAX_FETCH)

    def query_vector(self, query: str) -> list[float] | None:
        """The query's dense embedding; None in sparse mode, which needs none."""
        return None if self.how.mode == "sparse" else self.embedder.encode([query.strip()])[0].tolist()

    def retrieve_recent(
        self,
        query: str,
        k: int,
        weight: float,
        half_life_hours: float,
        symbols: list[str] | tuple[str, ...] = (),
        since: datetime | None = None,
        now: datetime | None = None,
        until: datetime | None = None,
        bonus: Bonus | None = None,
        vector: list[float] | None = None,
    ) -> list[Hit]:
        """Top-k articles with a preference for fresh news (and whatever `bonus` prefers): 3k candidates by
        similarity, re-ranked by recency + bonus. `vector`: as for `retrieve`."""
        rerank = weight > 0 or bonus is not None
        candidates = self.retrieve(query, k * 3 if rerank else k, symbols, since, until, vector=vector)
        return prefer_recent(candidates, now or datetime.now(UTC), weight, half_life_hours, bonus)[:k]


@dataclass
class Retrieved:
    hits: list[Hit]
    symbols: list[str]  # the ticker filter applied
    notes: list[str] = field(default_factory=list)


def _day(ts: datetime | None) -> str:
    return "the start" if ts is None else ts.strftime("%Y-%m-%d %H:%M UTC")


def retrieve_for_question(
    retriever: Retriever,
    question: str,
    k: int,
    weight: float,
    half_life_hours: float,
    aliases: dict[str, str],
    symbols: list[str] | None = None,
    since: datetime | None = None,
    history: Sequence[tuple[str, str]] = (),
    now: datetime | None = None,
    filing_boost: float = 0.0,
) -> Retrieved:
    """The news context for a question, exactly as serving and dataset generation both build it: given `symbols`
    filter (`[]` = none); otherwise tickers named in the question filter, falling back to all news when they
    have none. `history`: the conversation's earlier (role, text) turns; a follow-up that names no company
    retrieves with them (`query.with_conversation`). A calendar period in the question ("yesterday", "this week",
    "in 2022", relative to `now`) narrows the news to its dates, falling back to all dates when it has none.
    Filing-like documents whose fiscal year or company the question names rank higher by `filing_boost` each."""
    conversation = with_conversation(question, history, aliases)
    query = conversation.query
    notes = ["follow-up: retrieved with the conversation's earlier turns"] if conversation.carried else []
    given = symbols is not None
    wanted = (
        [s.strip().upper() for s in symbols or [] if s.strip()] if given else symbols_in(conversation.about, aliases)
    )
    now = now or datetime.now(UTC)
    period = parse_question(question, aliases, now)
    # A follow-up's filing preference reads the carried turns too ("and the year before?" keeps the company).
    about = period if conversation.about == question else parse_question(conversation.about, aliases, now)
    bonus = filing_bonus(about, conversation.about, filing_boost)
    # The later start wins; a naive `since` is UTC, as everywhere here.
    given_since = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    starts = [d for d in (given_since, period.news_since) if d is not None]
    lo, hi = (max(starts) if starts else None), period.news_until

    # Embedded once: the fallbacks below search the same text again with other filters.
    vector = retriever.query_vector(query) if query.strip() else None

    def search(tickers: list[str], lo: datetime | None, hi: datetime | None) -> list[Hit]:
        return retriever.retrieve_recent(
            query, k, weight, half_life_hours, symbols=tickers, since=lo, until=hi, now=now, bonus=bonus,
            vector=vector,
        )

    hits = search(wanted, lo, hi)
    if period.has_news_window:
        if hits:
            notes.append(f"news from {_day(lo)} until {_day(hi) if hi else 'now'}: the question's period")
        else:  # a period, too, is a hint: nothing in it, so search all dates
            lo, hi = since, None
            hits = search(wanted, lo, hi)
            notes.append("no news in the question's period; searched all dates")
    if hits or not wanted or given:
        return Retrieved(hits, wanted, notes)
    # A name in the question is a hint, not a demand: no news under that ticker, so search everything.
    hits = search([], lo, hi)
    return Retrieved(hits, [], [*notes, f"no news tagged {','.join(wanted)}; searched all news"])
