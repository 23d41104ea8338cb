"""OpenAI chat-completions wire format: request/response models and the mapping onto the RAG chain.

RAG is applied to the last user message; earlier user/assistant messages are the history; system messages are the
client's notes about the user and go in as "about me" (they cannot replace finassist's own rules).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from finassist.inference.chain import Answer, AskInput, Turn


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=8_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=8_000)] | Annotated[list[TextPart], Field(max_length=32)]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # top_p, user, n=1 ... are accepted and ignored

    model: str | None = Field(None, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=4_096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4_096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    n: int = Field(1, ge=1, le=1, description="One choice per request.")


def to_ask_input(request: ChatCompletionRequest) -> AskInput:
    """The chain input for an OpenAI request; ValueError (→ 422) when it has no final user message."""
    messages = request.messages
    if messages[-1].role != "user":
        raise ValueError("the last message must be a user message (the question)")
    question = messages[-1].text().strip()
    if not question:
        raise ValueError("the last user message is empty")
    notes = [m.text().strip() for m in messages[:-1] if m.role in ("system", "developer") and m.text().strip()]
    history = [Turn(role=m.role, content=m.text()) for m in messages[:-1] if m.role in ("user", "assistant")]
    return AskInput(
        question=question,
        about_me="\n".join(notes)[:2_000],
        history=history,
        max_new_tokens=request.max_completion_tokens or request.max_tokens,
        temperature=request.temperature,
    )


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def model_name(answer_model: str, adapter: str | None) -> str:
    return f"{answer_model}+{adapter}" if adapter else answer_model


def usage_of(answer: Answer) -> dict[str, int]:
    p, c = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def completion(answer: Answer, cid: str) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name(answer.model, answer.adapter),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer},
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": usage_of(answer),
        # Extension fields: clients that don't know them ignore them.
        "sources": [s.model_dump(mode="json") for s in answer.sources],
        "prompt_version": answer.prompt_version,
    }


def chunk(cid: str, model: str, delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def final_chunks(cid: str, answer: Answer, include_usage: bool) -> list[dict[str, Any]]:
    model = model_name(answer.model, answer.adapter)
    last = chunk(cid, model, {}, answer.finish_reason)
    last["sources"] = [s.model_dump(mode="json") for s in answer.sources]
    out = [last]
    if include_usage:  # per the spec: one more chunk with empty choices and the usage
        out.append({**chunk(cid, model, {}), "choices": [], "usage": usage_of(answer)})
    return out


__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "chunk",
    "completion",
    "completion_id",
    "final_chunks",
    "to_ask_input",
]
