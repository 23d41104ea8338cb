"""Predefined investor questions and the personas asking them: the seed of the fine-tuning set.

The teacher LLM answers each question from the news retrieved for it, in the context of the persona's "about me".
`normalise_question` is the one definition of "the same question": it dedupes the set here and later keeps the
train/eval split disjoint by question.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, ValidationError, model_validator

__all__ = ["Persona", "Question", "QuestionSet", "Topic", "load_questions", "normalise_question"]

PACKAGED_FILE = "questions.yaml"

PersonaId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
QuestionId = Annotated[str, StringConstraints(pattern=r"^q[0-9]{3,6}$")]


class Topic(StrEnum):
    STOCKS = "stocks"
    CRYPTO = "crypto"
    ETFS = "etfs"
    MACRO = "macro"
    EARNINGS = "earnings"
    RISK = "risk"


class Persona(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PersonaId
    about_me: Annotated[str, StringConstraints(strip_whitespace=True, min_length=20, max_length=600)]


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: QuestionId
    persona: PersonaId
    topic: Topic
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=400)]


def normalise_question(text: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form: '$VLTX: beat?' and 'vltx beat' compare equal."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


class QuestionSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    personas: list[Persona] = Field(min_length=1)
    questions: list[Question] = Field(min_length=1)
    _about: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_ids_and_references(self) -> QuestionSet:
        about: dict[str, str] = {}
        for p in self.personas:
            if p.id in about:
                raise ValueError(f"duplicate persona id {p.id!r}")
            about[p.id] = p.about_me
        seen_ids: set[str] = set()
        seen_text: dict[str, str] = {}
        for q in self.questions:
            if q.id in seen_ids:
                raise ValueError(f"duplicate question id {q.id!r}")
            seen_ids.add(q.id)
            if q.persona not in about:
                raise ValueError(f"question {q.id}: unknown persona {q.persona!r}")
            key = normalise_question(q.question)
            if key in seen_text:
                raise ValueError(f"question {q.id}: duplicate question text (same as {seen_text[key]})")
            seen_text[key] = q.id
        self._about = about
        return self

    def about_me(self, question: Question) -> str:
        return self._about[question.persona]

    def by_topic(self, topic: Topic | str) -> list[Question]:
        return [q for q in self.questions if q.topic == topic]


def _item_label(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """'question q007' for an error inside questions[6], so messages name the id rather than a list index."""
    if len(loc) >= 2 and loc[0] in ("personas", "questions") and isinstance(loc[1], int):
        kind = str(loc[0])[:-1]
        items = raw.get(loc[0])
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        item_id = item.get("id") if isinstance(item, dict) else None
        label = f"{kind} {item_id}" if item_id else f"{kind} #{loc[1] + 1}"
        field = ".".join(str(part) for part in loc[2:])
        return f"{label}: {field}" if field else label
    return ".".join(str(part) for part in loc) or "file"


def _describe(err: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for e in err.errors(include_url=False):
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(msg if not e["loc"] else f"{_item_label(raw, e['loc'])}: {msg}")
    return "; ".join(lines)


def load_questions(path: Path | None = None) -> QuestionSet:
    """The packaged question set, or a user file of the same shape (personas + questions) when `path` is given."""
    if path is None:
        source = f"{PACKAGED_FILE} (packaged)"
        text = files("finassist.training").joinpath(PACKAGED_FILE).read_text(encoding="utf-8")
    else:
        source = str(path)
        text = Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: invalid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping with 'personas' and 'questions'")
    try:
        return QuestionSet.model_validate(raw)
    except ValidationError as e:
        raise ValueError(f"{source}: {_describe(e, raw)}") from e
