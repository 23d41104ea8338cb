"""Domain models shared by the three pipelines: what a news article, a chunk and a search hit are."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Point ids are uuid5(namespace, "<article id>:<chunk index>"): the same chunk of the same article always lands on
# the same point, so re-ingesting changes nothing.
POINT_NAMESPACE = uuid.UUID("0b6c7c3e-58a4-4c43-9f0a-6f3b1c2d7e10")

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.\-/:]{0,19}$"
# A news timestamp outside these is a broken record, not news (and year 1 or 9999 overflows once moved to UTC).
EARLIEST_NEWS = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_NEWS = datetime(2200, 1, 1, tzinfo=UTC)
_SURROGATE = re.compile("[\ud800-\udfff]")


class NewsArticle(BaseModel):
    """One news item in Alpaca's news schema, validated. `content` is raw HTML."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    headline: str = Field(min_length=1, max_length=2_000)
    summary: str = Field("", max_length=20_000)
    content: str = Field("", max_length=5_000_000)
    author: str = Field("", max_length=500)
    url: str = Field("", max_length=2_000)
    source: str = Field("", max_length=200)
    symbols: tuple[str, ...] = Field((), max_length=200)
    created_at: datetime
    updated_at: datetime

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("id must be an integer or a string")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("id must not be negative")
            return str(value)
        return value

    @field_validator("author", "url", "source", "summary", "content", mode="before")
    @classmethod
    def _none_to_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        # Clients render it as a link: anything but http(s) (javascript:, data:) is refused, not passed on.
        if value and not re.match(r"^https?://\S+$", value, flags=re.IGNORECASE):
            raise ValueError("url must be an http(s) URL")
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _normalise_symbols(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError("symbols must be a list of tickers")
        if not all(isinstance(s, str) for s in value):
            raise ValueError("each ticker symbol must be a string")
        return tuple(dict.fromkeys(s.strip().upper() for s in value if s.strip()))

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if not re.match(SYMBOL_PATTERN, s)]
        if bad:
            raise ValueError(f"invalid ticker symbol(s): {bad[:3]}")
        return value

    @field_validator("headline", "summary", "content", "author", "source", mode="before")
    @classmethod
    def _repair_lone_surrogates(cls, value: Any) -> Any:
        # JSON may carry "\ud83d" alone: not valid Unicode, and one such character should not cost the article.
        # (In an id or URL it is refused: those must round-trip exactly.)
        if isinstance(value, str) and _SURROGATE.search(value):
            return _SURROGATE.sub("\ufffd", value)
        return value

    @field_validator("created_at", "updated_at", mode="after")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("date out of range") from None
        if not EARLIEST_NEWS <= value <= LATEST_NEWS:
            raise ValueError(f"date must be between {EARLIEST_NEWS:%Y} and {LATEST_NEWS:%Y}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_updated_at(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("updated_at") and data.get("created_at"):
            data = {**data, "updated_at": data["created_at"]}
        return data

    @model_validator(mode="after")
    def _check_times(self) -> NewsArticle:
        if self.updated_at < self.created_at:
            raise ValueError("updated_at is before created_at")
        return self

    @property
    def version(self) -> float:
        """The article's version: its `updated_at` as a POSIX timestamp. Newer versions replace older ones."""
        return self.updated_at.timestamp()


@dataclass(frozen=True, slots=True)
class RawRecord:
    """What a source hands to the pipeline before validation: a line of JSON, a decoded dict, or bytes."""

    origin: str
    payload: str | bytes | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record that failed a pipeline step; kept, with the reason, in the quarantine file."""

    origin: str
    step: str
    reason: str
    raw: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "step": self.step,
            "reason": self.reason,
            "raw": self.raw,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class CleanArticle:
    """An article whose headline, summary and HTML body have been turned into clean plain text."""

    article: NewsArticle
    headline: str
    summary: str
    body: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable piece of an article: the text that gets embedded and where it came from."""

    article_id: str
    index: int
    text: str


def point_id(article_id: str, index: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{article_id}:{index}"))


@dataclass(frozen=True, slots=True)
class ChunkedArticle:
    """A clean article and its chunks, in order."""

    clean: CleanArticle
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True, slots=True)
class EmbeddedArticle:
    """A chunked article with one normalised vector per chunk: what the store writer receives."""

    clean: CleanArticle
    chunks: tuple[Chunk, ...]
    vectors: tuple[tuple[float, ...], ...]

    @property
    def article(self) -> NewsArticle:
        return self.clean.article


class Filing(BaseModel):
    """What a filing-like document's title says ("ACME_2021_10K page 12"): stored with its chunks at ingest."""

    company: str
    fiscal_year: int
    form: str  # "10-K", "10-Q", "20-F", "8-K", "40-F", "annual report"
    page: int | None = None


class Hit(BaseModel):
    """One retrieved article (its best chunk), with the metadata a prompt or a client needs."""

    article_id: str
    headline: str
    score: float
    created_at: datetime
    updated_at: datetime
    symbols: list[str]
    text: str
    chunk_index: int
    url: str = ""
    summary: str = ""
    source: str = ""
    author: str = ""
    filing: Filing | None = None  # set when the headline reads as company + year + form
