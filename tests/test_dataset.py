"""Dataset generation: retrieval from the real store, a teacher over the OpenAI protocol (local fake) or the local
model, cached/resumable answers, drops with counts, a split disjoint by question, content-hash versions, MLflow."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from finassist.config import Settings
from finassist.domain import Hit
from finassist.embed import get_embedder
from finassist.llm.remote import OpenAICompatibleLLM
from finassist.retrieval import Retriever
from finassist.store import close_stores, open_store
from finassist.training.dataset import (
    QAExample,
    generate_dataset,
    is_refusal,
    list_datasets,
    load_dataset,
    split_by_question,
)
from finassist.training.questions import load_questions, normalise_question

from conftest import article, finassist, ingest_rows
from fake_openai import FakeOpenAI

QUESTIONS_YAML = """
personas:
  - id: saver
    about_me: I am 35, saving for a house in five years, low risk appetite.
  - id: retiree
    about_me: I am 68 and live on dividends from BKWD and PBDV.
questions:
  - {id: q001, persona: saver, topic: stocks, question: "What happened to Copperdeep Mining's dividend?"}
  - {id: q002, persona: retiree, topic: earnings, question: "Did Brookward Financial beat earnings estimates?"}
  - {id: q003, persona: saver, topic: risk, question: "Is a recall at Riverment Motors a risk for my savings?"}
  - {id: q004, persona: retiree, topic: macro, question: "What did the central bank do with interest rates?"}
  - {id: q005, persona: saver, topic: etfs, question: "Which ETF holds Voltrix and what are its fees?"}
  - {id: q006, persona: retiree, topic: crypto, question: "What changed in the Zephyr network upgrade?"}
"""

NEWS = [
    article(1, headline="Copperdeep Mining Doubles Its Dividend", content="<p>Copperdeep doubled it to $0.50.</p>",
            symbols=["CPRD"]),
    article(2, headline="Brookward Financial Q3 EPS Beats Estimates", content="<p>EPS $1.31 vs $1.27.</p>",
            symbols=["BKWD"]),
    article(3, headline="Central Bank Cuts Rates By A Quarter Point", content="<p>The rate is now 3.75%.</p>",
            symbols=[]),
]


def teacher_reply(messages) -> str:
    question = messages[-1]["content"].rsplit("Question:", 1)[1].strip()
    if "Riverment" in question:
        return "I'm sorry, but I can't help with that."
    if "Zephyr" in question:
        return "   "
    return f"According to the news [1], here is the answer to: {question}"


@pytest.fixture
def setup(home, tmp_path):
    settings = Settings(home=home, teacher_base_url="http://unused", teacher_model="teacher-1", tracing=False)
    ingest_rows(settings, NEWS, tmp_path / "news.jsonl")
    qfile = tmp_path / "questions.yaml"
    qfile.write_text(QUESTIONS_YAML)
    retriever = Retriever(open_store(settings), get_embedder())
    return settings, load_questions(qfile), retriever, qfile


def remote_teacher(fake: FakeOpenAI) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(fake.url, "teacher-1", "sk-teacher", max_retries=0)


def test_generation_drops_bad_answers_splits_by_question_and_versions_by_content(setup):
    settings, questions, retriever, _ = setup
    with FakeOpenAI(reply=teacher_reply, api_key="sk-teacher") as fake:
        report = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {})
        asked = [r.messages for r in fake.chat_requests]
    assert report.generated == 6 and report.reused == 0 and report.failed == 0
    assert report.dropped_refusal == 1 and report.dropped_empty == 1
    assert report.train + report.eval == 4 and report.eval >= 1 and report.new_version
    # The teacher saw the serving template: system rules, then the profile, numbered news and the question.
    assert all(m[0]["role"] == "system" and "About me:" in m[-1]["content"] for m in asked)
    manifest, train, held = load_dataset(settings, report.version)
    assert manifest["teacher"] == "openai:teacher-1" and manifest["prompt_version"] == "v1"
    assert not {normalise_question(e.question) for e in train} & {normalise_question(e.question) for e in held}
    first = next(e for e in train + held if e.id == "q001")
    assert first.context[0].article_id == "1" and first.about_me.startswith("I am 35")
    assert first.answer.startswith("According to the news [1]")


def test_a_rerun_with_the_same_inputs_reuses_every_answer_and_the_version(setup):
    settings, questions, retriever, _ = setup
    with FakeOpenAI(reply=teacher_reply, api_key="sk-teacher") as fake:
        first = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {})
        again = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {})
        assert len(fake.chat_requests) == 6  # no second round of teacher calls
        other = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-2", {})
    assert again.version == first.version and not again.new_version
    assert again.reused == 6 and again.generated == 0
    assert other.version != first.version  # another teacher is another dataset


def test_a_run_that_fails_halfway_keeps_its_answers_and_the_rerun_asks_only_the_rest(setup):
    settings, questions, retriever, _ = setup

    def flaky(messages) -> str:
        if "Brookward" in messages[-1]["content"].rsplit("Question:", 1)[1]:
            raise RuntimeError("teacher crashed")  # the fake answers 500
        return teacher_reply(messages)

    with FakeOpenAI(reply=flaky, api_key="sk-teacher") as fake:
        broken = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {})
    assert broken.failed == 1 and broken.generated == 5 and "q002" in broken.failures[0]
    with FakeOpenAI(reply=teacher_reply, api_key="sk-teacher") as fake:
        fixed = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {})
        assert len(fake.chat_requests) == 1
    assert fixed.generated == 1 and fixed.reused == 5 and fixed.failed == 0
    assert fixed.train + fixed.eval == broken.train + broken.eval + 1


def test_a_teacher_budget_asks_at_most_that_many_and_the_next_run_asks_the_rest(setup):
    settings, questions, retriever, _ = setup
    with FakeOpenAI(reply=teacher_reply, api_key="sk-teacher") as fake:
        first = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {},
                                 max_calls=4)
        assert len(fake.chat_requests) == 4 and (first.generated, first.deferred) == (4, 2)
        assert first.train + first.eval == 3  # q001-q004 asked, the Riverment refusal dropped
        second = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {},
                                  max_calls=4)
        assert len(fake.chat_requests) == 6  # only the two that waited; cached answers cost no budget
    assert (second.generated, second.reused, second.deferred) == (2, 4, 0)
    assert second.version != first.version and second.train + second.eval == 4  # + q005 (q006's empty is dropped)


def test_the_split_never_puts_one_question_on_both_sides():
    hit = Hit(article_id="1", headline="h", score=1.0, created_at=datetime(2026, 1, 1, tzinfo=UTC),
              updated_at=datetime(2026, 1, 1, tzinfo=UTC), symbols=[], text="t", chunk_index=0)

    def example(i: int, question: str) -> QAExample:
        return QAExample(id=f"q{i:03d}", question=question, context=[hit], answer="a", teacher="t",
                         prompt_version="v1", created_at=datetime.now(UTC))

    texts = [f"What is happening with company number {i}?" for i in range(200)]
    # The same question asked again with other case, spacing and punctuation must land on the same side.
    examples = [example(i, q) for i, q in enumerate(texts)] + [
        example(500 + i, q.upper().replace("?", " ?!")) for i, q in enumerate(texts[:50])
    ]
    train, held = split_by_question(examples, 0.2)
    train_q = {normalise_question(e.question) for e in train}
    held_q = {normalise_question(e.question) for e in held}
    assert not train_q & held_q
    assert len(train) + len(held) == len(examples)
    assert 0.1 < len(held_q) / 200 < 0.3
    assert split_by_question(examples[:2], 0.01)[1]  # even a tiny set keeps an eval question


def test_stub_and_looping_teacher_answers_are_dropped_and_counted(setup):
    """Today's failure modes of a small teacher (issue 12): the bare stub and a loop never reach the training set."""
    settings, questions, retriever, _ = setup
    replies = {
        "Copperdeep": "The answer to this question is:",
        "Brookward": "Brookward beat estimates [1]. a 1.0% increase a 1.0% increase a 1.0% increase a 1.0% increase",
        "central bank": "The answer to this question is: the central bank cut rates to 3.75% [1].",  # has content
    }

    def reply(messages) -> str:
        question = messages[-1]["content"].rsplit("Question:", 1)[1]
        return next((r for k, r in replies.items() if k in question), teacher_reply(messages))

    with FakeOpenAI(reply=reply, api_key="sk-teacher") as fake:
        report = generate_dataset(settings, questions, retriever, remote_teacher(fake), "openai:teacher-1", {})
    assert (report.dropped_stub, report.dropped_looping) == (1, 1)
    assert (report.dropped_refusal, report.dropped_empty) == (1, 1)
    manifest, train, held = load_dataset(settings, report.version)
    assert manifest["dropped_stub"] == 1 and manifest["dropped_looping"] == 1
    assert sorted(e.id for e in train + held) == ["q004", "q005"]
    assert manifest["student"] == "SmolLM2-135M-Instruct" and manifest["warnings"] == []  # an endpoint taught


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("As an AI, I cannot give financial advice.", True),
        ("I cannot answer that.", True),
        ("The news I have does not cover Zephyr's upgrade.", False),
        ("Sorry to say, Brookward missed estimates [1].", False),
    ],
)
def test_refusals_are_recognised_but_honest_no_coverage_answers_are_kept(answer, refusal):
    assert is_refusal(answer) is refusal


@pytest.mark.slow
def test_cli_generates_with_the_local_model_then_lists_and_shows(setup):
    settings, _, _, qfile = setup
    close_stores()  # the CLI runs in another process
    # The student teaches itself (conftest pins FINASSIST_TEACHER_MODEL=student): the same on every machine.
    env = {"FINASSIST_TEACHER_MAX_TOKENS": "16", "FINASSIST_TEACHER_BASE_URL": "", "FINASSIST_TEACHER_MODEL": "student"}
    out = finassist("dataset", "generate", "--questions", str(qfile), "--limit", "3", "--json", env=env)
    assert out["teacher"] == "local:SmolLM2-135M-Instruct" and out["generated"] == 3
    assert out["student"] == "SmolLM2-135M-Instruct" and "its own answers" in out["warnings"][0]
    dropped = sum(out[f"dropped_{why}"] for why in ("empty", "refusal", "stub", "looping", "duplicate"))
    assert out["train"] + out["eval"] + dropped == 3
    assert out["mlflow_run_id"]
    listed = finassist("dataset", "list", "--json")
    assert [d["version"] for d in listed] == [out["version"]]
    shown = finassist("dataset", "show", out["version"][:6], "--json")
    assert shown["version"] == out["version"] and shown["examples"]
    missing = finassist("dataset", "show", "abcdef", check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr
    assert list_datasets(settings)[0]["version"] == out["version"]

    import mlflow

    client = mlflow.MlflowClient(settings.tracking_uri)
    run = client.get_run(out["mlflow_run_id"])
    assert run.data.tags["dataset_version"] == out["version"]
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {out["version"]}
    assert json.loads((settings.datasets_dir / out["version"] / "manifest.json").read_text())["eval_questions"]
