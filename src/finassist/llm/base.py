"""The LLM port: one small interface (count tokens, generate, stream) that every backend implements.

Messages are OpenAI-style dicts (`{"role": ..., "content": ...}`); a local backend renders them with its tokenizer's
chat template, a remote one sends them as they are.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from finassist.prompt import get_template

Message = dict[str, str]

ADAPTER_META = "finassist.json"  # written next to a trained adapter: base model, prompt version, dataset version


class LLMError(RuntimeError):
    """A backend failed in a way the caller may report (bad config, remote error)."""


class LLMUnavailableError(LLMError):
    """The backend cannot be reached (remote endpoint down, refused, rate-limited)."""


class LLMTimeoutError(LLMError):
    """Generation ran past its deadline and was stopped."""


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    timeout_s: float | None = None  # wall-clock budget for the whole generation
    # Ban repeating an n-gram of the answer itself (0 = off). Within the completion only: the prompt's news must
    # stay copyable, which transformers' own no_repeat_ngram_size (it counts the prompt too) would forbid.
    no_repeat_ngram_size: int = 0

    def deadline(self) -> float | None:
        return None if self.timeout_s is None else time.monotonic() + self.timeout_s


@dataclass
class Generation:
    """A finished generation with real token counts (the server's, for a remote backend that reports them)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # "stop" | "length"
    seconds: float = 0.0
    first_token_s: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """What is loaded: reported by the API and recorded in traces."""

    backend: str
    model: str
    adapter: str | None
    prompt_version: str | None  # the template version the adapter was trained with (None: base model)
    context_window: int


class LLM(ABC):
    """A chat LLM. Implementations must be safe to call from several threads (they serialise internally)."""

    info: ModelInfo

    @abstractmethod
    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the prompt built from `messages` takes, generation prompt included."""

    @abstractmethod
    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then exactly one final `Generation` (the whole text + usage)."""

    def generate(self, messages: Sequence[Message], params: GenerationParams) -> Generation:
        for item in self.stream(messages, params):
            if isinstance(item, Generation):
                return item
        raise LLMError("backend ended its stream without a result")

    batch_size: int = 1  # prompts `generate_batch` answers in one pass

    def generate_batch(self, conversations: Sequence[Sequence[Message]], params: GenerationParams) -> list[Generation]:
        """Answers to several prompts (offline work such as teaching or evaluating). In-process backends decode
        them together, which is faster on a CPU whose decoding is bound by reading the weights."""
        return [self.generate(messages, params) for messages in conversations]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (optional)."""


def read_adapter_meta(adapter_dir: Path) -> dict:
    """The training record next to an adapter ({} when there is none); its prompt version must be one we know."""
    path = adapter_dir / ADAPTER_META
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LLMError(f"unreadable adapter metadata {path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise LLMError(f"adapter metadata {path} must be a JSON object")
    version = meta.get("prompt_version")
    if version is not None:
        # Fail at load, not on every request: serving must build prompts with the version the adapter learned.
        try:
            get_template(version)
        except ValueError as exc:
            raise LLMError(f"adapter {adapter_dir}: {exc}") from None
    return meta
