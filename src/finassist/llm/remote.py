"""Remote backend: any OpenAI-compatible chat endpoint (OpenAI, vLLM, TGI, Ollama, llama.cpp server) via `openai`.

This is also how serving scales out: vLLM serving the base model with the registered LoRA adapter, finassist in
front of it doing retrieval, prompting, tracing and the API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

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
        # Local servers (vLLM, llama.cpp, Ollama) accept any key; the SDK insists on one.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=max_retries)
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
            ids = self._tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
            return len(ids["input_ids"] if isinstance(ids, dict) else ids)
        chars = sum(len(m["content"]) for m in messages)
        return math.ceil(chars / CHARS_PER_TOKEN_ESTIMATE) + PER_MESSAGE_OVERHEAD * len(messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str | Generation]:
        started = time.monotonic()
        first: float | None = None
        pieces: list[str] = []
        usage = None
        finish = "stop"
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stream=True,
                stream_options={"include_usage": True},
                timeout=params.timeout_s,
            )
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
                    if params.timeout_s is not None and time.monotonic() - started > params.timeout_s:
                        raise LLMTimeoutError(f"generation passed its {params.timeout_s:g} s budget")
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"the LLM endpoint did not answer within {params.timeout_s} s") from exc
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
            raise LLMUnavailableError(f"the LLM endpoint is unavailable: {type(exc).__name__}") from exc
        except openai.APIStatusError as exc:
            raise LLMError(f"the LLM endpoint refused the request: HTTP {exc.status_code}") from exc
        text = "".join(pieces).strip()
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        else:  # servers that ignore stream_options: estimate, and say so
            prompt_tokens, completion_tokens = self.count_tokens(messages), self.count_tokens(
                [{"role": "assistant", "content": text}]
            )
        yield Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason="length" if finish == "length" else "stop",
            seconds=time.monotonic() - started,
            first_token_s=first,
            extra={"usage_estimated": usage is None},
        )
