"""Remote backend: any OpenAI-compatible chat endpoint (OpenAI, vLLM, TGI, Ollama, llama.cpp server) via `openai`.

This is also how serving scales out: vLLM serving the base model with the registered LoRA adapter, finassist in
front of it doing retrieval, prompting, tracing and the API.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping, Sequence

import openai

from finassist.llm.base import (
    LLM,
    Generation,
    GenerationParams,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    Message,
    ModelInfo,
)

# Without the served model's tokenizer, prompt sizes are estimated conservatively (English BPE averages ~4 chars).
CHARS_PER_TOKEN_ESTIMATE = 3.0
PER_MESSAGE_OVERHEAD = 4


# Retries of an unavailable endpoint (connection refused, 429, 5xx): exponential backoff, within the deadline.
FIRST_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
MAX_RETRY_AFTER_S = 60.0  # a server asking for a longer wait is treated as down


class OpenAICompatibleLLM(LLM):
    def __init__(
        self,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        context_window: int = 8192,
        tokenizer: str = "",
        max_retries: int = 2,
        adapter: str | None = None,
        prompt_version: str | None = None,
    ):
        if not model:
            raise LLMError("the OpenAI-compatible backend needs a model name (FINASSIST_LLM_MODEL)")
        if max_retries < 0:
            raise LLMError("max_retries must not be negative")
        # Local servers (vLLM, llama.cpp, Ollama) accept any key; the SDK insists on one.
        # The SDK's own retries are off: they would multiply `timeout_s` and sleep through Retry-After (up to
        # 2 minutes) past the caller's budget; `stream` retries within the deadline instead.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0)
        self.max_retries = max_retries
        self.model = model
        self._tokenizer = None
        if tokenizer:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        where = base_url or "api.openai.com"
        self.info = ModelInfo(
            backend="openai",
            model=f"{model}@{where}",
            adapter=adapter,
            prompt_version=prompt_version,
            context_window=context_window,
        )

    def count_tokens(self, messages: Sequence[Message]) -> int:
        if self._tokenizer is not None and getattr(self._tokenizer, "chat_template", None):
            # return_dict=False: transformers 5 returns a BatchEncoding (a UserDict, whose len() is its key count).
            ids = self._tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
            )
            return len(ids["input_ids"] if isinstance(ids, Mapping) else ids)
        chars = sum(len(m["content"]) for m in messages)
        return math.ceil(chars / CHARS_PER_TOKEN_ESTIMATE) + PER_MESSAGE_OVERHEAD * len(messages)

    def _count_text(self, text: str) -> int:
        """Tokens of bare text (an answer), without any chat-template overhead."""
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False))
        return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)

    def _open_stream(self, messages: Sequence[Message], params: GenerationParams, deadline: float | None):
        """The streaming response, retrying an unavailable endpoint while retries and the deadline allow."""
        attempt = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise LLMTimeoutError(f"the LLM endpoint did not answer within {params.timeout_s:g} s")
            try:
                return self.client.chat.completions.create(
                    model=self.model,
                    messages=list(messages),  # type: ignore[arg-type]
                    max_tokens=params.max_new_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    stream=True,
                    stream_options={"include_usage": True},
                    # No budget: the client's default (10 min), never None, which would wait forever.
                    timeout=openai.NOT_GIVEN if remaining is None else remaining,
                )
            except openai.APITimeoutError as exc:
                raise LLMTimeoutError(f"the LLM endpoint did not answer in time ({_budget(params)})") from exc
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
                delay = _retry_delay(exc, attempt)
                late = delay > MAX_RETRY_AFTER_S or (deadline is not None and time.monotonic() + delay >= deadline)
                if attempt >= self.max_retries or late:
                    raise LLMUnavailableError(f"the LLM endpoint is unavailable: {_describe(exc)}") from exc
                time.sleep(delay)
                attempt += 1

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str | Generation]:
        started = time.monotonic()
        deadline = params.deadline()
        first: float | None = None
        pieces: list[str] = []
        usage = None
        finish = "stop"
        try:
            response = self._open_stream(messages, params, deadline)
            with response:
                for chunk in response:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        if choice.finish_reason:
                            finish = choice.finish_reason
                        text = choice.delta.content if choice.delta else None
                        if text:
                            if first is None:
                                first = time.monotonic() - started
                            pieces.append(text)
                            yield text
                    if deadline is not None and time.monotonic() > deadline:
                        raise LLMTimeoutError(f"generation passed its {params.timeout_s:g} s budget")
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"the LLM endpoint stopped answering ({_budget(params)})") from exc
        except openai.APIConnectionError as exc:  # the connection broke mid-stream
            raise LLMUnavailableError(f"the LLM endpoint is unavailable: {_describe(exc)}") from exc
        except openai.APIStatusError as exc:
            # Not the server's message: for a 401 it may quote (part of) the key.
            raise LLMError(f"the LLM endpoint refused the request: HTTP {exc.status_code}") from exc
        except openai.APIError as exc:  # an error event inside the stream
            raise LLMError(f"the LLM endpoint failed mid-answer: {type(exc).__name__}") from exc
        text = "".join(pieces).strip()
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        else:  # servers that ignore stream_options: estimate, and say so
            prompt_tokens, completion_tokens = self.count_tokens(messages), self._count_text(text)
        yield Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason="length" if finish == "length" else "stop",
            seconds=time.monotonic() - started,
            first_token_s=first,
            extra={"usage_estimated": usage is None},
        )

    def close(self) -> None:
        self.client.close()


def _budget(params: GenerationParams) -> str:
    return "no budget set" if params.timeout_s is None else f"budget {params.timeout_s:g} s"


def _describe(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    return f"HTTP {status}" if status is not None else type(exc).__name__


def _retry_delay(exc: openai.APIError, attempt: int) -> float:
    """Exponential backoff, or the server's Retry-After (seconds) when it sends one."""
    delay = min(FIRST_RETRY_DELAY_S * 2**attempt, MAX_RETRY_DELAY_S)
    response = getattr(exc, "response", None)
    if response is not None:
        with contextlib.suppress(TypeError, ValueError):
            delay = max(0.0, float(response.headers.get("retry-after", delay)))
    return delay
