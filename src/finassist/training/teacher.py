"""Who teaches the dataset (and judges evaluations): an OpenAI-compatible endpoint, or offline the strongest
installed catalog model that is not the student. A student named as its own teacher is refused;
FINASSIST_TEACHER_MODEL=student makes it teach itself knowingly, and the dataset's manifest says so."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from finassist.config import Settings
from finassist.llm import LLM, LLMError

log = logging.getLogger(__name__)


# FINASSIST_TEACHER_MODEL=student: the student answers its own questions, knowingly (fast smoke runs, tests).
SELF_TEACHING = "student"


@dataclass(frozen=True)
class TeacherChoice:
    """Who answers the dataset's questions: an OpenAI-compatible endpoint, or a model run here."""

    remote: bool
    model: str  # the endpoint's model name, or what to load as FINASSIST_LLM_MODEL (a catalog name, usually)
    student: str  # the base model the dataset trains, as adapters record it (SmolLM2-135M-Instruct)
    named: bool  # named by FINASSIST_TEACHER_MODEL (or an endpoint) rather than picked among installed models


def teacher_is_remote(settings: Settings) -> bool:
    """An endpoint teaches when one is configured or the teacher is named but is no catalog model (e.g. gpt-4o)."""
    from finassist.llm.catalog import catalog_entry

    named = settings.teacher_model
    return bool(settings.teacher_base_url) or bool(
        named and named != SELF_TEACHING and catalog_entry(named) is None
    )


def choose_teacher(settings: Settings) -> TeacherChoice:
    """The teacher FINASSIST_TEACHER_* mean; offline: the named catalog model or, when none is named, the largest
    installed catalog model other than the student (catalog.teacher_model).

    A named teacher that is the student is an error: it would teach the model only what it already says. Only when
    nothing but the student is installed (or FINASSIST_TEACHER_MODEL=student) does the student teach itself; the
    dataset's manifest then says so (`teacher_warnings`)."""
    from finassist.llm.catalog import catalog_entry, teacher_model
    from finassist.llm.local import base_model_name

    student = base_model_name(settings.llm_model)
    named = settings.teacher_model
    if teacher_is_remote(settings):
        if not named:
            raise LLMError("FINASSIST_TEACHER_BASE_URL is set but FINASSIST_TEACHER_MODEL is not")
        return TeacherChoice(True, named, student, named=True)
    if named == SELF_TEACHING:
        return TeacherChoice(False, settings.llm_model, student, named=True)
    if named:
        entry = catalog_entry(named)
        assert entry is not None  # any other name is an endpoint's model (teacher_is_remote)
        if entry == catalog_entry(settings.llm_model) or entry.label == student:
            raise LLMError(
                f"FINASSIST_TEACHER_MODEL={named} is the student ({student}, FINASSIST_LLM_MODEL): a model cannot "
                "teach itself what it does not know. Name a larger installed model "
                "(finassist models list), leave it empty to use the largest installed one, or set "
                f"FINASSIST_TEACHER_MODEL={SELF_TEACHING} to train on the student's own answers knowingly"
            )
        return TeacherChoice(False, entry.name, student, named=True)
    spec = teacher_model(settings.llm_model, settings)
    if spec is None:
        log.warning("no catalog model other than the student %s is installed: it teaches itself", student)
        return TeacherChoice(False, settings.llm_model, student, named=False)
    return TeacherChoice(False, spec.name, student, named=False)


def teacher_label(settings: Settings, llm: LLM) -> str:
    """The teacher as datasets, answers and training runs record it (part of every cached answer's key)."""
    if teacher_is_remote(settings):
        return f"openai:{settings.teacher_model}@{settings.teacher_base_url or 'api.openai.com'}"
    return f"local:{llm.info.model}" + (f"+{llm.info.adapter}" if llm.info.adapter else "")


def teacher_warnings(teacher: LLM, student: str) -> list[str]:
    """What the manifest should say about the teacher: a student teaching itself, or a teacher smaller than it."""
    from finassist.llm.catalog import catalog_entry

    if teacher.info.backend == "openai":
        return []
    if teacher.info.model == student:
        return [f"the teacher is the student itself ({student}): this dataset teaches the model its own answers, "
                "mistakes included; install a larger model (make install MODELS=qwen2.5-coder-0.5b) or set "
                "FINASSIST_TEACHER_BASE_URL"]
    mine, theirs = catalog_entry(teacher.info.model), catalog_entry(student)
    if mine and theirs and mine.params_m < theirs.params_m:
        return [f"the teacher {mine.label} ({mine.params_m}M parameters) is smaller than the student "
                f"{theirs.label} ({theirs.params_m}M)"]
    return []


def open_teacher(settings: Settings, choice: TeacherChoice | None = None) -> LLM:
    """The chosen teacher (default: `choose_teacher(settings)`), opened: an OpenAI-compatible client, or the
    catalog model in process, always without an adapter (a served champion teaching its successor would drift)."""
    choice = choice or choose_teacher(settings)
    if choice.remote:
        from finassist.llm.remote import OpenAICompatibleLLM

        key = settings.teacher_api_key.get_secret_value() if settings.teacher_api_key else None
        return OpenAICompatibleLLM(
            settings.teacher_base_url or None, choice.model, key, max_retries=settings.teacher_max_retries
        )
    from finassist.llm import open_llm

    update: dict[str, Any] = {"llm_model": choice.model}
    if settings.llm_backend == "openai":  # the endpoint serves the student; a catalog teacher runs here
        update["llm_backend"] = "auto"
    return open_llm(settings.model_copy(update=update), adapter="")


def open_judge(settings: Settings) -> LLM | None:
    """The LLM judge of `evaluate` and promotion: the teacher when it is named (an endpoint, or a catalog model in
    FINASSIST_TEACHER_MODEL), else none. An automatically picked local teacher does not judge: that would load the
    largest installed model (1.5B: 13–31 s of prefill per answer on 2 cores) in every evaluation unasked, and the
    student never grades itself."""
    if not teacher_is_remote(settings) and settings.teacher_model in ("", SELF_TEACHING):
        return None
    return open_teacher(settings)  # errors as dataset generation would (no endpoint model, the student named)
