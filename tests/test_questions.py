"""The packaged investor questions: enough of them, every topic covered, grounded in the sample news, no duplicates;
a bad user file fails with a message naming the offending id."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from finassist.training.questions import Question, QuestionSet, Topic, load_questions, normalise_question

# Tickers, coins, funds and company names of data/sample_news.jsonl (all fictional).
MENTIONS_SAMPLE = re.compile(
    r"\b(VLTX|Voltrix|BKWD|Brookward|KSTR|Kestrel|CELQ|Celquora|MRBL|Marbleleaf|ASTV|Astravane|CLDN|Cloudnook|"
    r"RVMT|Riverment|GRNB|Greenbarrow|HVNR|Havenrock|TLWV|Tellwave|CPRD|Copperdeep|ZEPH|ZEPHUSD|Zephyr|"
    r"ORBL|ORBLUSD|Orbla|KVN|KVNUSD|Kelvane|SGSX|Summitgate|PBDV|Pinebrook)\b",
    re.IGNORECASE,
)

GOOD_PERSONA = {"id": "saver", "about_me": "I'm 30 and saving for a house in three years; low risk."}
GOOD_QUESTION = {"id": "q001", "persona": "saver", "topic": "macro", "question": "Will rates fall this year?"}


@pytest.fixture(scope="module")
def packaged() -> QuestionSet:
    return load_questions()


def write_set(tmp_path: Path, personas: list[dict], questions: list[dict]) -> Path:
    path = tmp_path / "questions.yaml"
    path.write_text(yaml.safe_dump({"personas": personas, "questions": questions}), encoding="utf-8")
    return path


def test_packaged_set_has_at_least_100_questions(packaged: QuestionSet) -> None:
    assert len(packaged.questions) >= 100


def test_every_topic_has_at_least_12_questions(packaged: QuestionSet) -> None:
    counts = Counter(q.topic for q in packaged.questions)
    assert {t: counts[t] for t in Topic if counts[t] < 12} == {}


def test_at_least_40_percent_name_a_sample_ticker_or_company(packaged: QuestionSet) -> None:
    named = [q for q in packaged.questions if MENTIONS_SAMPLE.search(q.question)]
    assert len(named) / len(packaged.questions) >= 0.40


def test_some_questions_are_general(packaged: QuestionSet) -> None:
    general = [q for q in packaged.questions if not MENTIONS_SAMPLE.search(q.question)]
    assert len(general) >= 20


def test_every_persona_asks_something(packaged: QuestionSet) -> None:
    used = {q.persona for q in packaged.questions}
    assert {p.id for p in packaged.personas} - used == set()


def test_no_two_packaged_questions_normalise_the_same(packaged: QuestionSet) -> None:
    keys = Counter(normalise_question(q.question) for q in packaged.questions)
    assert [k for k, n in keys.items() if n > 1] == []


def test_about_me_resolves_the_persona_text(packaged: QuestionSet) -> None:
    q = packaged.questions[0]
    persona = next(p for p in packaged.personas if p.id == q.persona)
    assert packaged.about_me(q) == persona.about_me
    assert packaged.by_topic(q.topic)[0] == q


def test_normalise_ignores_case_whitespace_and_punctuation() -> None:
    assert normalise_question("  Should I buy $VLTX?? ") == normalise_question("should i BUY vltx")
    assert normalise_question("Is ZEPH up") != normalise_question("Is ZEPH down")


def test_a_user_file_replaces_the_packaged_set(tmp_path: Path) -> None:
    qs = load_questions(write_set(tmp_path, [GOOD_PERSONA], [GOOD_QUESTION]))
    assert qs.questions == [Question.model_validate(GOOD_QUESTION)]
    assert qs.about_me(qs.questions[0]).startswith("I'm 30")


@pytest.mark.parametrize(
    ("personas", "questions", "expected"),
    [
        ([GOOD_PERSONA], [{**GOOD_QUESTION, "persona": "ghost"}], r"question q001: unknown persona 'ghost'"),
        (
            [GOOD_PERSONA],
            [GOOD_QUESTION, {**GOOD_QUESTION, "question": "Something else entirely?"}],
            r"duplicate question id 'q001'",
        ),
        ([GOOD_PERSONA, GOOD_PERSONA], [GOOD_QUESTION], r"duplicate persona id 'saver'"),
        (
            [GOOD_PERSONA],
            [GOOD_QUESTION, {**GOOD_QUESTION, "id": "q002", "question": "will RATES fall this year"}],
            r"question q002: duplicate question text \(same as q001\)",
        ),
        ([GOOD_PERSONA], [{**GOOD_QUESTION, "topic": "bonds"}], r"question q001: topic: Input should be"),
        ([GOOD_PERSONA], [{**GOOD_QUESTION, "id": "Q1"}], r"question Q1: id: String should match pattern"),
        ([GOOD_PERSONA], [{**GOOD_QUESTION, "question": "   "}], r"question q001: question: String should have at"),
        ([GOOD_PERSONA], [{**GOOD_QUESTION, "question": "why? " * 200}], r"question q001: question: .*at most 400"),
        ([{**GOOD_PERSONA, "about_me": ""}], [GOOD_QUESTION], r"persona saver: about_me: String should have at"),
    ],
    ids=["unknown-persona", "dup-id", "dup-persona", "dup-text", "bad-topic", "bad-id", "empty", "long", "no-about"],
)
def test_bad_file_raises_value_error_naming_the_problem(
    tmp_path: Path, personas: list[dict], questions: list[dict], expected: str
) -> None:
    path = write_set(tmp_path, personas, questions)
    with pytest.raises(ValueError, match=expected) as info:
        load_questions(path)
    assert str(path) in str(info.value)


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("personas: [\n  - id: x\nquestions: {", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.yaml: invalid YAML"):
        load_questions(path)


def test_file_without_personas_and_questions_mapping_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"list\.yaml: expected a mapping"):
        load_questions(path)
