"""Dataset generation: investor questions + news context from the feature store → a teacher LLM's grounded answers
→ a versioned Q&A dataset, split train/eval disjoint by question.

The context comes from the serving retriever (`retrieve_for_question`) and the teacher sees the serving prompt
(`prompt.get_template()`), so the student learns to answer exactly the prompts it will be served. Every answer is
appended to a cache as soon as it arrives: a crash keeps what was generated, and a re-run only asks the teacher
about questions whose inputs (question, profile, news context, teacher, prompt version) changed. The version is a
hash of the dataset's content, so unchanged inputs give the same version.

The teacher (`training/teacher.py`) is an OpenAI-compatible endpoint, or offline the strongest installed catalog
model that is not the student; the manifest records teacher and student, and warns when the student taught itself.
Empty, refusing, stub ("The answer to this question is:") and looping answers are dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from finassist.answer_checks import has_content, is_looping
from finassist.config import Settings
from finassist.domain import Hit
from finassist.llm import LLM, GenerationParams, LLMError
from finassist.prompt import PROMPT_VERSION, get_template
from finassist.retrieval import Retriever, retrieve_for_question
from finassist.training.progress import Progress
from finassist.training.questions import Question, QuestionSet, normalise_question
from finassist.training.teacher import teacher_warnings

log = logging.getLogger(__name__)

CACHE_FILE = "answers.jsonl"
MANIFEST = "manifest.json"
# Refusals and non-answers teach the student nothing; "the news does not cover this" is a valid, grounded answer.
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry, (?:but )?i|i (?:can(?:no|')t|am unable to|won'?t) (?:help|assist|answer|"
    r"provide)|as an ai\b)",
    re.IGNORECASE,
)


class QAExample(BaseModel):
    """One supervised example: the question and its news context, and the teacher's answer to learn."""

    id: str = Field(min_length=1)
    about_me: str = ""
    question: str = Field(min_length=1)
    context: list[Hit]
    answer: str
    teacher: str
    prompt_version: str
    created_at: datetime

    def content(self) -> dict[str, Any]:
        """What the version hashes: everything but the creation time."""
        return self.model_dump(mode="json", exclude={"created_at"})


def is_refusal(answer: str) -> bool:
    return bool(_REFUSAL.match(answer))


def record_key(question: Question, about_me: str, hits: list[Hit], teacher: str, prompt_version: str) -> str:
    """Identity of a teacher call's inputs: the same inputs reuse the cached answer."""
    material = {
        "question": question.question,
        "about_me": about_me,
        "context": [(h.article_id, h.updated_at.isoformat(), h.chunk_index, h.text) for h in hits],
        "teacher": teacher,
        "prompt_version": prompt_version,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def question_bucket(question: str) -> float:
    """A stable number in [0, 1) per normalised question: the split never depends on order or on other questions."""
    digest = hashlib.sha256(normalise_question(question).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_question(examples: list[QAExample], eval_fraction: float) -> tuple[list[QAExample], list[QAExample]]:
    """Train/eval disjoint by (normalised) question; with two or more questions the eval split is never empty."""
    train = [e for e in examples if question_bucket(e.question) >= eval_fraction]
    held = [e for e in examples if question_bucket(e.question) < eval_fraction]
    if not held and len({normalise_question(e.question) for e in examples}) > 1:
        lowest = min(examples, key=lambda e: question_bucket(e.question))
        held = [e for e in examples if normalise_question(e.question) == normalise_question(lowest.question)]
        train = [e for e in examples if e not in held]
    return train, held


def dataset_version(train: list[QAExample], held: list[QAExample]) -> str:
    material = {"train": [e.content() for e in train], "eval": [e.content() for e in held]}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class GenerationReport:
    version: str
    path: str
    teacher: str
    student: str  # the base model it was generated for (FINASSIST_LLM_MODEL); the training run records its own
    prompt_version: str
    questions: int
    train: int
    eval: int
    generated: int  # answers the teacher wrote in this run
    reused: int  # answers taken from the cache (same inputs)
    dropped_empty: int
    dropped_refusal: int
    dropped_stub: int  # no content words: "The answer to this question is:"
    dropped_looping: int  # the same words over and over
    dropped_duplicate: int
    failed: int  # teacher calls that failed after their retries (a re-run asks again)
    deferred: int  # new questions beyond the teacher-call budget, left for a later run
    new_version: bool
    seconds: float
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the teacher (e.g. the student teaching itself)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnswerCache:
    """Append-only JSONL of teacher answers by input key; lines cut short by a crash are skipped on reading."""

    def __init__(self, path: Path):
        self.path = path
        self.answers: dict[str, QAExample] = {}
        self._lock = threading.Lock()
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.answers[row["key"]] = QAExample.model_validate(row["example"])
                except (json.JSONDecodeError, KeyError, TypeError, ValidationError):
                    log.warning("skipping an unreadable line of %s", path)

    def add(self, key: str, example: QAExample) -> None:
        line = json.dumps({"key": key, "example": example.model_dump(mode="json")}) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
            self.answers[key] = example


def generate_dataset(
    settings: Settings,
    questions: QuestionSet,
    retriever: Retriever,
    teacher: LLM,
    teacher_name: str,
    aliases: dict[str, str],
    limit: int | None = None,
    max_calls: int | None = None,
) -> GenerationReport:
    """`max_calls`: at most this many questions go to the teacher (a paid endpoint's budget per run); the rest are
    left out of this version and asked by a later run (cached answers cost nothing and are always used)."""
    from finassist.llm.local import base_model_name

    started = time.monotonic()
    student = base_model_name(settings.llm_model)
    warnings = teacher_warnings(teacher, student)
    for warning in warnings:
        log.warning("%s", warning)
    prompt_version = PROMPT_VERSION
    build = get_template(prompt_version)
    cache = AnswerCache(settings.datasets_dir / "cache" / CACHE_FILE)
    chosen = questions.questions[:limit] if limit else questions.questions
    params = GenerationParams(
        max_new_tokens=settings.teacher_max_tokens, temperature=0.0, timeout_s=settings.teacher_timeout_s
    )

    # Retrieval first (fast, one embedder): the teacher calls are what may run concurrently.
    jobs = []
    for q in chosen:
        about_me = questions.about_me(q)
        hits = retrieve_for_question(
            retriever, q.question, settings.retrieval_k, settings.recency_weight, settings.recency_half_life_hours,
            aliases, filing_boost=settings.filing_boost,
        ).hits
        jobs.append((q, about_me, hits, record_key(q, about_me, hits, teacher_name, prompt_version)))

    done = 0
    generated = 0
    failures: list[str] = []
    pending = [job for job in jobs if job[3] not in cache.answers]
    deferred = pending[max_calls:] if max_calls is not None else []
    pending = pending[: len(pending) - len(deferred)]
    if deferred:
        log.warning("teacher budget: asking %d of %d new questions (--max-teacher-calls %d); %d wait for a later run",
                    len(pending), len(pending) + len(deferred), max_calls, len(deferred))

    def ask(batch: list) -> list[QAExample]:
        timeout = settings.teacher_timeout_s * len(batch)
        answers = teacher.generate_batch(
            [build(q.question, hits, about_me, ()) for q, about_me, hits, _ in batch],
            replace(params, timeout_s=timeout),
        )
        return [
            QAExample(id=q.id, about_me=about_me, question=q.question, context=hits, answer=answer.text.strip(),
                      teacher=teacher_name, prompt_version=prompt_version, created_at=datetime.now(UTC))
            for (q, about_me, hits, _), answer in zip(batch, answers, strict=True)
        ]

    # A remote teacher answers single questions concurrently; an in-process one decodes a batch at a time.
    size = teacher.batch_size
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    workers = settings.teacher_concurrency if teacher.info.backend == "openai" else 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="teacher") as pool, \
            Progress("dataset answers", len(pending)) as progress:
        futures = {pool.submit(ask, batch): batch for batch in batches}
        for future in as_completed(futures):
            batch = futures[future]
            try:
                examples = future.result()
            except LLMError as exc:
                for job in batch:
                    failures.append(f"{job[0].id}: {exc}")
                log.warning("teacher failed on %s: %s", ", ".join(job[0].id for job in batch), exc)
            else:
                for job, example in zip(batch, examples, strict=True):
                    cache.add(job[3], example)
                generated += len(examples)
            done += len(batch)
            progress.update(done, f"({len(failures)} failed)" if failures else "")
    if pending and not generated:
        raise LLMError(f"the teacher failed on every question ({failures[0]})")

    examples, dropped = _select([cache.answers[job[3]] for job in jobs if job[3] in cache.answers])
    train, held = split_by_question(examples, settings.dataset_eval_fraction)
    version = dataset_version(train, held)
    target = settings.datasets_dir / version
    new_version = not (target / MANIFEST).is_file()
    report = GenerationReport(
        version=version,
        path=str(target),
        teacher=teacher_name,
        student=student,
        prompt_version=prompt_version,
        questions=len(chosen),
        train=len(train),
        eval=len(held),
        generated=generated,
        reused=len(jobs) - len(pending),
        dropped_empty=dropped["empty"],
        dropped_refusal=dropped["refusal"],
        dropped_stub=dropped["stub"],
        dropped_looping=dropped["looping"],
        dropped_duplicate=dropped["duplicate"],
        failed=len(failures),
        deferred=len(deferred),
        new_version=new_version,
        seconds=round(time.monotonic() - started, 2),
        failures=failures[:20],
        warnings=warnings,
    )
    if new_version:
        _write(target, train, held, report, settings)
    return report


def _select(examples: Iterable[QAExample]) -> tuple[list[QAExample], dict[str, int]]:
    """Drop empty answers, refusals, stubs, loops and repeated questions (the first one stays), counting each.

    Stubs and loops are judged by the serving answer checks, so training drops what serving would not return."""
    dropped = {"empty": 0, "refusal": 0, "stub": 0, "looping": 0, "duplicate": 0}
    seen: set[tuple[str, str]] = set()
    kept = []
    for example in examples:
        key = (normalise_question(example.question), example.about_me.strip().lower())
        if not example.answer.strip():
            dropped["empty"] += 1
        elif is_refusal(example.answer):
            dropped["refusal"] += 1
        elif not has_content(example.answer):
            dropped["stub"] += 1
        elif is_looping(example.answer):
            dropped["looping"] += 1
        elif key in seen:
            dropped["duplicate"] += 1
        else:
            seen.add(key)
            kept.append(example)
    return kept, dropped


def _write(target: Path, train: list[QAExample], held: list[QAExample], report: GenerationReport, settings) -> None:
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, rows in (("train.jsonl", train), ("eval.jsonl", held)):
        with (partial / name).open("w", encoding="utf-8") as f:
            for example in rows:
                f.write(example.model_dump_json() + "\n")
    manifest = {
        **{k: v for k, v in report.as_dict().items() if k not in ("path", "new_version", "seconds", "failures")},
        "created_at": datetime.now(UTC).isoformat(),
        "retrieval_k": settings.retrieval_k,
        "eval_fraction": settings.dataset_eval_fraction,
        "train_questions": sorted({e.id for e in train}),
        "eval_questions": sorted({e.id for e in held}),
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(target)


# --- reading ---------------------------------------------------------------------------------------------------
def list_datasets(settings: Settings) -> list[dict[str, Any]]:
    """Every stored version's manifest, newest first."""
    root = settings.datasets_dir
    manifests = []
    for path in sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else []:
        try:
            manifests.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            log.warning("unreadable manifest %s", path)
    return sorted(manifests, key=lambda m: m.get("created_at", ""), reverse=True)


def load_dataset(settings: Settings, version: str | None = None) -> tuple[dict, list[QAExample], list[QAExample]]:
    """A stored version (default: the newest): its manifest, train and eval examples."""
    if version is None:
        versions = list_datasets(settings)
        if not versions:
            raise FileNotFoundError(f"no dataset under {settings.datasets_dir}; run `finassist dataset generate`")
        version = versions[0]["version"]
    if not re.fullmatch(r"[0-9a-f]{6,64}", version):
        raise ValueError(f"{version!r} is not a dataset version")
    matches = sorted(settings.datasets_dir.glob(f"{version}*/{MANIFEST}")) if settings.datasets_dir.is_dir() else []
    if len(matches) != 1:
        raise FileNotFoundError(f"dataset {version} {'is ambiguous' if matches else 'not found'}")
    folder = matches[0].parent
    manifest = json.loads(matches[0].read_text())

    def read(name: str) -> list[QAExample]:
        return [QAExample.model_validate_json(line) for line in (folder / name).read_text().splitlines() if line]

    return manifest, read("train.jsonl"), read("eval.jsonl")
