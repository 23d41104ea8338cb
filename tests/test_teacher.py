"""The offline teacher: endpoint vs catalog model, never the student unless nothing else is installed (and then the
dataset says so), the judge only when the teacher is named. A fake catalog (tests/test_catalog.py) stands in for the
Qwen packages, so the default path is the same on a machine that has them and on CI, which has only SmolLM2."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from finassist.config import Settings
from finassist.llm import LLM, Generation, GenerationParams, LLMError, Message, ModelInfo, catalog
from finassist.llm.remote import OpenAICompatibleLLM
from finassist.training import dataset
from finassist.training.teacher import choose_teacher, open_judge, open_teacher, teacher_label, teacher_warnings
from test_catalog import _entry, _fake_package


@pytest.fixture
def fake_catalog(tmp_path, monkeypatch):
    """A catalog of fake-small (the default, unsplit), fake-mid (installed, 2 parts) and fake-big (not installed)."""
    site = tmp_path / "site"
    site.mkdir()
    parts = [b"mid part one ", b"mid part two"]
    for i, piece in enumerate(parts, start=1):
        _fake_package(site, f"fake-mid-part{i}", "1.0", {f"data/part{i:02d}.bin": piece})
    _fake_package(site, "fake-small", "2.0", {"small.gguf": b"GGUF small"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(catalog, "CATALOG", {
        "fake-small": _entry("fake-small", ("fake-small==2.0",), b"GGUF small", 100, split=False,
                             filename="small.gguf"),
        "fake-mid": _entry("fake-mid", ("fake-mid-part1==1.0", "fake-mid-part2==1.0"), b"".join(parts), 500),
        "fake-big": _entry("fake-big", ("fake-big-part1==1.0",), b"big", 1500),
    })
    monkeypatch.setattr(catalog, "DEFAULT_MODEL", "fake-small")
    return {"models": tmp_path / "models"}


class ScriptedLLM(LLM):
    """An in-process model that answers from a script, as the teacher would."""

    def __init__(self, model: str, reply=lambda question: "Copperdeep doubled its dividend to $0.50 [1]."):
        self.info = ModelInfo(backend="transformers", model=model, adapter=None, prompt_version=None,
                              context_window=8192)
        self.reply = reply

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str | Generation]:
        question = messages[-1]["content"].rsplit("Question:", 1)[-1].strip()
        yield Generation(text=self.reply(question), prompt_tokens=1, completion_tokens=1, finish_reason="stop")


@pytest.fixture
def opened(monkeypatch):
    """What `open_llm` was asked to load (FINASSIST_LLM_MODEL, backend, adapter), answered by a ScriptedLLM."""
    calls: list[tuple[str, str, str | None]] = []

    def fake_open_llm(settings, adapter=None, adapter_label=None):
        calls.append((settings.llm_model, settings.engine, adapter))
        return ScriptedLLM(catalog.catalog_entry(settings.llm_model).label)

    monkeypatch.setattr("finassist.llm.open_llm", fake_open_llm)
    return calls


def offline(tmp_path, **overrides) -> Settings:
    fields = {"home": tmp_path / "home", "llm_model": "", "teacher_model": "", "teacher_base_url": None,
              "llm_device": "cpu"} | overrides
    return Settings(**fields)


def test_by_default_the_largest_installed_model_other_than_the_student_teaches(fake_catalog, tmp_path, opened):
    settings = offline(tmp_path, models_dir=fake_catalog["models"])  # the student: the default, fake-small
    choice = choose_teacher(settings)
    assert (choice.remote, choice.model, choice.student, choice.named) == (False, "fake-mid", "Fake-Small", False)
    teacher = open_teacher(settings, choice)
    assert opened == [("fake-mid", "llamacpp", "")]  # the base model, never a served adapter; on a CPU: llama.cpp
    assert teacher_label(settings, teacher) == "local:Fake-Mid" and teacher_warnings(teacher, choice.student) == []
    # The other way round the small one teaches, and the dataset says it is smaller than its student.
    reverse = offline(tmp_path, models_dir=fake_catalog["models"], llm_model="fake-mid")
    small = open_teacher(reverse)
    assert small.info.model == "Fake-Small"
    assert "smaller than the student Fake-Mid" in teacher_warnings(small, "Fake-Mid")[0]


def test_a_student_served_by_an_endpoint_gets_its_catalog_teacher_in_process(fake_catalog, tmp_path, opened):
    settings = offline(tmp_path, models_dir=fake_catalog["models"], llm_backend="openai",
                       llm_base_url="http://vllm:8000/v1")
    open_teacher(settings)
    assert opened == [("fake-mid", "llamacpp", "")]


def test_with_only_the_student_installed_it_teaches_itself_and_says_so(fake_catalog, tmp_path, monkeypatch,
                                                                       opened):
    monkeypatch.delitem(catalog.CATALOG, "fake-mid")
    settings = offline(tmp_path, models_dir=fake_catalog["models"])
    choice = choose_teacher(settings)
    assert (choice.remote, choice.model, choice.named) == (False, "", False)
    teacher = open_teacher(settings, choice)
    assert opened == [("", "llamacpp", "")]
    (warning,) = teacher_warnings(teacher, choice.student)
    assert "the teacher is the student itself (Fake-Small)" in warning and "its own answers" in warning


@pytest.mark.parametrize("named", ["smollm2-135m", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"])
def test_naming_the_student_as_teacher_is_an_error_that_says_what_to_do(tmp_path, named):
    with pytest.raises(LLMError, match=r"is the student \(SmolLM2-135M-Instruct.*finassist models list.*=student"):
        choose_teacher(offline(tmp_path, teacher_model=named))
    with pytest.raises(LLMError, match="is the student"):
        choose_teacher(offline(tmp_path, llm_model="qwen2.5-coder-0.5b", teacher_model="Qwen2.5-Coder-0.5B-Instruct"))


def test_an_endpoint_teaches_when_configured_or_when_the_name_is_not_a_catalog_model(tmp_path):
    cases = {  # (base URL, FINASSIST_TEACHER_MODEL) → remote?, model
        ("http://vllm:8000/v1", "qwen2.5-coder-1.5b"): (True, "qwen2.5-coder-1.5b"),  # the endpoint serves it
        (None, "gpt-4o"): (True, "gpt-4o"),
        (None, "qwen2.5-coder-1.5b"): (False, "qwen2.5-coder-1.5b"),
        (None, "Qwen/Qwen2.5-Coder-1.5B-Instruct"): (False, "qwen2.5-coder-1.5b"),  # its upstream id
        (None, "student"): (False, ""),
    }
    for (url, named), expected in cases.items():
        choice = choose_teacher(offline(tmp_path, teacher_base_url=url, teacher_model=named))
        assert (choice.remote, choice.model) == expected, (url, named)
    with pytest.raises(LLMError, match="FINASSIST_TEACHER_BASE_URL is set but FINASSIST_TEACHER_MODEL is not"):
        choose_teacher(offline(tmp_path, teacher_base_url="http://vllm:8000/v1"))
    remote = offline(tmp_path, teacher_base_url="http://vllm:8000/v1", teacher_model="qwen2.5-coder-1.5b")
    assert teacher_label(remote, open_teacher(remote)) == "openai:qwen2.5-coder-1.5b@http://vllm:8000/v1"


def test_the_judge_is_the_teacher_only_when_it_is_named(fake_catalog, tmp_path, opened):
    models = fake_catalog["models"]
    assert open_judge(offline(tmp_path, models_dir=models)) is None  # picked automatically: no judge, no load
    assert open_judge(offline(tmp_path, models_dir=models, teacher_model="student")) is None  # never self-grading
    assert opened == []
    assert open_judge(offline(tmp_path, models_dir=models, teacher_model="fake-mid")).info.model == "Fake-Mid"
    judge = open_judge(offline(tmp_path, teacher_base_url="http://judge/v1", teacher_model="gpt-4o"))
    assert isinstance(judge, OpenAICompatibleLLM)
    with pytest.raises(LLMError, match="is the student"):
        open_judge(offline(tmp_path, models_dir=models, teacher_model="fake-small"))


def test_a_self_taught_dataset_records_teacher_student_and_the_warning(setup_store):
    """Generation with the student as its own teacher: the manifest names both and says it taught itself."""
    settings, questions, retriever = setup_store
    student = ScriptedLLM("SmolLM2-135M-Instruct")
    report = dataset.generate_dataset(settings, questions, retriever, student, "local:SmolLM2-135M-Instruct", {})
    manifest = json.loads((settings.datasets_dir / report.version / dataset.MANIFEST).read_text())
    assert manifest["teacher"] == "local:SmolLM2-135M-Instruct" and manifest["student"] == "SmolLM2-135M-Instruct"
    assert "teaches the model its own answers" in manifest["warnings"][0]


@pytest.fixture
def setup_store(home, tmp_path):
    from finassist.embed import get_embedder
    from finassist.retrieval import Retriever
    from finassist.store import open_store
    from finassist.training.questions import load_questions

    from conftest import article, ingest_rows

    settings = Settings(home=home, tracing=False)
    ingest_rows(settings, [article(1, headline="Copperdeep Mining Doubles Its Dividend", symbols=["CPRD"],
                                   content="<p>Copperdeep doubled it to $0.50.</p>")], tmp_path / "news.jsonl")
    qfile = tmp_path / "questions.yaml"
    rows = [f"  - {{id: q00{i}, persona: saver, topic: stocks, question: 'Copperdeep case {i}?'}}" for i in (1, 2, 3)]
    persona = "  - {id: saver, about_me: I am 35 and save for a house.}"
    qfile.write_text("\n".join(["personas:", persona, "questions:", *rows]) + "\n")
    return settings, load_questions(qfile), Retriever(open_store(settings), get_embedder())
