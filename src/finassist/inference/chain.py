"""The RAG chain, as LangChain core runnables: retrieve fresh news → build the prompt → generate (streaming).

    question (+ about me, history, symbols, since) ─► retrieve ─► prompt ─► generate ─► check ─► answer + sources

The check (`answer_checks`, on unless FINASSIST_ANSWER_CHECKS=false): a question about a company the news found does
not cover is answered in words without the model; an empty, stub or looping answer, or one whose figures no source
states, becomes the best source's key sentence with its [n]; [n] that point to no source are removed. The streamed
pieces are the model's own; the final `Answer` carries the checked text.

Stateless: the chat history comes with every request. The chain records what each step saw and how long it took
(`RunRecord`), which the monitor turns into a trace; the chain itself knows nothing about MLflow.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda, RunnablePassthrough
from pydantic import BaseModel, Field

from finassist.answer_checks import not_covered_answer, not_covered_lead
from finassist.answer_review import review
from finassist.config import Settings
from finassist.coverage import Coverage, coverage
from finassist.domain import Hit
from finassist.grounding import context_text, is_grounded
from finassist.llm import LLM, Generation, GenerationParams, ModelInfo
from finassist.prompt import ChatTurn, Prompt, fit_prompt
from finassist.retrieval import Retriever, retrieve_for_question


class ClientGone(Exception):
    """The client left: nothing more is to be done for it."""


class Turn(BaseModel):
    role: str = Field(pattern="^(user|assistant)$")
    content: str = Field(max_length=8_000)


class AskInput(BaseModel):
    question: str = Field(min_length=1, max_length=2_000)
    about_me: str = Field("", max_length=2_000)
    history: list[Turn] = Field(default_factory=list, max_length=40)
    symbols: list[str] | None = Field(None, max_length=20)
    since: datetime | None = None
    k: int | None = Field(None, ge=1, le=20)
    max_new_tokens: int | None = Field(None, ge=1, le=4_096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)


class Source(BaseModel):
    rank: int
    article_id: str
    headline: str
    url: str
    created_at: datetime
    symbols: list[str]
    score: float


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Answer(BaseModel):
    answer: str
    sources: list[Source]
    model: str
    adapter: str | None
    prompt_version: str
    usage: Usage
    latency_ms: float
    finish_reason: str
    symbols: list[str] = Field(description="The ticker filter applied (given, or named in the question).")
    notes: list[str] = Field(default_factory=list)
    revised: bool = Field(
        False, description="The answer checks changed the streamed text: this answer replaces what was streamed."
    )


@dataclass
class Step:
    name: str
    start_ns: int
    end_ns: int = 0


@dataclass
class RunRecord:
    """What one request went through, step by step: the monitor's raw material."""

    request: AskInput
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    start_ns: int = field(default_factory=time.time_ns)
    steps: list[Step] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    prompt: Prompt | None = None
    generation: Generation | None = None
    symbols: list[str] = field(default_factory=list)  # the ticker filter applied
    notes: list[str] = field(default_factory=list)
    coverage: Coverage | None = None  # whether the news found covers what the question asks about (checks on)
    answer: Answer | None = None
    error: str | None = None
    model: ModelInfo | None = None  # what answered (the chain's model; a swap does not change it mid-answer)
    grounded: bool | None = None  # the answer states a fact of its news and no number absent from it (None: no news)

    def step(self, name: str) -> Step:
        self.steps.append(Step(name, time.time_ns()))
        return self.steps[-1]


def sources_of(hits: list[Hit]) -> list[Source]:
    return [
        Source(
            rank=i,
            article_id=h.article_id,
            headline=h.headline,
            url=h.url,
            created_at=h.created_at,
            symbols=h.symbols,
            score=round(h.score, 4),
        )
        for i, h in enumerate(hits, 1)
    ]


class RAGChain:
    def __init__(
        self,
        retriever: Retriever,
        llm: LLM,
        settings: Settings,
        aliases: dict[str, str],
        on_finish: Callable[[RunRecord], None] | None = None,
    ):
        self.retriever = retriever
        self.llm = llm
        self.settings = settings
        self.aliases = aliases
        self.on_finish = on_finish
        # Serving builds prompts with the template version the adapter was trained with (or the current one).
        self.prompt_version = llm.info.prompt_version
        self.runnable: Runnable = (
            RunnablePassthrough.assign(hits=RunnableLambda(self._retrieve, name="retrieve"))
            | RunnablePassthrough.assign(prompt=RunnableLambda(self._prompt, name="prompt"))
            | RunnableGenerator(self._generate, name="generate")
        )

    # --- the three steps -------------------------------------------------------------------------
    def _retrieve(self, state: dict[str, Any]) -> list[Hit]:
        req: AskInput = state["request"]
        record: RunRecord = state["record"]
        step = record.step("retrieve")
        s = self.settings
        found = retrieve_for_question(
            self.retriever,
            req.question,
            req.k or s.retrieval_k,
            s.recency_weight,
            s.recency_half_life_hours,
            self.aliases,
            symbols=req.symbols,
            since=req.since,
            history=[(t.role, t.content) for t in req.history],
            filing_boost=s.filing_boost,
        )
        record.hits, record.symbols = found.hits, found.symbols
        record.notes.extend(found.notes)
        step.end_ns = time.time_ns()
        if not s.answer_checks:
            return found.hits
        # An explicit symbols filter is the caller's choice of news: only "nothing found" is checked then.
        if req.symbols is None or not found.hits:
            record.coverage = coverage(req.question, found.hits, self.aliases)
        else:
            record.coverage = Coverage()
        if not record.coverage.covered:
            record.notes.append(f"{record.coverage.note}: answered without the model")
            return []  # another company's news must not reach the prompt (nor the sources) as if it answered
        return found.hits

    def _prompt(self, state: dict[str, Any]) -> Prompt:
        req: AskInput = state["request"]
        record: RunRecord = state["record"]
        step = record.step("prompt")
        max_new = req.max_new_tokens or self.settings.max_new_tokens
        budget = self.llm.info.context_window - max_new
        prompt = fit_prompt(
            req.question,
            state["hits"],
            self.llm.count_tokens,
            budget,
            about_me=req.about_me,
            history=[ChatTurn(t.role, t.content) for t in req.history],
            version=self.prompt_version,
        )
        if prompt.dropped_context or prompt.dropped_turns:
            record.notes.append(
                f"trimmed to fit the context: {prompt.dropped_context} news, {prompt.dropped_turns} history turns"
            )
        record.prompt = prompt
        step.end_ns = time.time_ns()
        return prompt

    def _generate(self, states: Iterator[dict[str, Any]]) -> Iterator[str | Answer]:
        # Upstream steps stream their output as partial dicts (the passthrough first, then each assigned key).
        state: dict[str, Any] = {}
        for chunk in states:
            state.update(chunk)
        req: AskInput = state["request"]
        record: RunRecord = state["record"]
        prompt: Prompt = state["prompt"]
        cancel: threading.Event | None = state.get("cancel")
        if cancel is not None and cancel.is_set():
            raise ClientGone("the client left before the generation started")
        step = record.step("generate")
        covered = record.coverage  # None: checks off
        if covered is not None and not covered.covered:
            text = not_covered_answer(covered.missing)
            step.end_ns = time.time_ns()
            yield text
            yield self._answer(record, prompt, text, Usage(prompt_tokens=prompt.tokens, completion_tokens=0), "stop")
            return
        lead = ""
        if covered is not None and covered.missing:  # part of the question is covered: say which part is not
            lead = not_covered_lead(covered.missing) + " "
            record.notes.append(f"{covered.note}: answered the rest")
            yield lead
        params = GenerationParams(
            max_new_tokens=req.max_new_tokens or self.settings.max_new_tokens,
            temperature=self.settings.temperature if req.temperature is None else req.temperature,
            timeout_s=self.settings.generation_timeout_s,
            no_repeat_ngram_size=self.settings.answer_no_repeat_ngram,
        )
        generation = None
        for item in self.llm.stream(prompt.messages, params):
            if isinstance(item, Generation):
                generation = item
            else:
                yield item
        assert generation is not None
        step.end_ns = time.time_ns()
        record.generation = generation
        text = generation.text
        if covered is not None:
            checks = review(text, req.question, prompt.context)
            text = lead + checks.text
            record.notes.extend(checks.notes)
        usage = Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens)
        if prompt.context:  # the training evaluation's metric, per served answer (microseconds of regex)
            record.grounded = is_grounded(text, context_text(prompt.context))
        yield self._answer(record, prompt, text, usage, generation.finish_reason, lead + generation.text)

    def _answer(
        self, record: RunRecord, prompt: Prompt, text: str, usage: Usage, finish_reason: str,
        streamed: str | None = None,  # what the client saw streamed, when not `text`
    ) -> Answer:
        info = self.llm.info
        return Answer(
            revised=(text if streamed is None else streamed).strip() != text.strip(),
            answer=text,
            sources=sources_of(prompt.context),
            model=info.model,
            adapter=info.adapter,
            prompt_version=prompt.version,
            usage=usage,
            latency_ms=round((time.time_ns() - record.start_ns) / 1e6, 1),
            finish_reason=finish_reason,
            symbols=record.symbols,
            notes=record.notes,
        )

    # --- entry points ----------------------------------------------------------------------------
    def stream(self, request: AskInput, cancel: threading.Event | None = None) -> Iterator[str | Answer]:
        """Answer text pieces as generated, then the `Answer` (whole text, sources, usage). Once `cancel` is set
        (the client left) no generation starts; one under way stops when its consumer closes this generator."""
        record = RunRecord(request, model=self.llm.info)
        try:
            for item in self.runnable.stream({"request": request, "record": record, "cancel": cancel}):
                if isinstance(item, Answer):
                    record.answer = item
                yield item
        except (GeneratorExit, ClientGone):  # the client left before the answer was complete
            if record.answer is None:
                record.error = "client gone"
            raise
        except BaseException as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if self.on_finish is not None:
                self.on_finish(record)

    def ask(self, request: AskInput) -> Answer:
        for item in self.stream(request):
            if isinstance(item, Answer):
                return item
        raise RuntimeError("the chain ended without an answer")
