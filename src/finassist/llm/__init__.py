"""The LLM port and its backends; `open_llm(settings)` builds the configured one."""

from __future__ import annotations

from pathlib import Path

from finassist.config import Settings
from finassist.llm.base import (
    ADAPTER_META,
    LLM,
    Generation,
    GenerationParams,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    Message,
    ModelInfo,
    read_adapter_meta,
)
from finassist.llm.library_noise import silence_library_noise

silence_library_noise()  # the backends import transformers, peft and bitsandbytes lazily, after this

__all__ = [
    "ADAPTER_META",
    "LLM",
    "Generation",
    "GenerationParams",
    "LLMError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "Message",
    "ModelInfo",
    "open_llm",
    "read_adapter_meta",
]


def open_llm(settings: Settings, adapter: str | None = None, adapter_label: str | None = None) -> LLM:
    """The configured LLM; `adapter` (a LoRA folder or model URI, '' = none) overrides FINASSIST_LLM_ADAPTER.

    A model URI (by default the registry's champion) is resolved and its adapter downloaded first."""
    from finassist.registry import RegistryError, resolve_adapter

    try:
        path, label = resolve_adapter(settings, adapter if adapter is not None else settings.adapter_spec)
    except RegistryError as exc:
        raise LLMError(str(exc)) from exc
    adapter = str(path) if path else None
    adapter_label = adapter_label or label
    if settings.engine == "openai":
        from finassist.llm.remote import OpenAICompatibleLLM

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        # The endpoint serves the adapter; a local copy of its folder says which prompt version it was trained with.
        meta = read_adapter_meta(Path(adapter)) if adapter and Path(adapter).is_dir() else {}
        return OpenAICompatibleLLM(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=key,
            context_window=settings.llm_context_tokens or 8192,
            tokenizer=settings.llm_tokenizer,
            adapter=(adapter_label or adapter) if adapter else None,
            prompt_version=meta.get("prompt_version"),
        )
    if settings.engine == "llamacpp":
        from finassist.llm.catalog import resolve_model
        from finassist.llm.llamacpp import LlamaCppLLM, serving_gguf

        spec = resolve_model(settings.llm_model, settings)  # a catalog name or a .gguf file; '' = the default
        return LlamaCppLLM(
            gguf=serving_gguf(spec.gguf, settings.llm_gguf_type, settings.models_path),
            adapter=adapter or None,
            models_dir=settings.models_path,
            context_window=settings.llm_context_tokens or spec.context_window,
            parallel=settings.llm_parallel,
            threads=settings.engine_threads,
            adapter_label=adapter_label,
            model_name=spec.label,
        )
    from finassist.llm.local import TransformersLLM

    return TransformersLLM(
        model=settings.llm_model,
        adapter=adapter or None,
        models_dir=settings.models_path,
        device=settings.llm_device,
        load_in_4bit=settings.llm_load_in_4bit,
        context_window=settings.llm_context_tokens,
        adapter_label=adapter_label,
    )
