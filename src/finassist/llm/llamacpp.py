"""In-process llama.cpp (the `xllamacpp` wheel): the packaged GGUF served quantized, several requests decoding
together in parallel slots (continuous batching), the LoRA champion applied at run time as a GGUF LoRA.

Why llama.cpp (benchmarks/engines.py, 2026-12-01): its greedy tokens equal transformers' on the packaged Q4_1 weights
(the model we train on is that GGUF, dequantised), while OpenVINO GenAI's GGUF reader diverges from the first token
and ignores a peft adapter's tensors. Prompts go in as token ids from the training tokenizer, so counts are exact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from finassist.llm.base import (
    LLM,
    Generation,
    GenerationParams,
    LLMError,
    LLMTimeoutError,
    Message,
    ModelInfo,
    read_adapter_meta,
)
from finassist.llm.local import PACKAGED_MODEL, packaged_gguf

log = logging.getLogger(__name__)

# peft module name -> GGUF tensor stem, for the architectures the catalog ships (llama: SmolLM2, qwen2: Qwen2.5).
_GGUF_NAMES = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
}
_ROPE_PERMUTED = {"llama"}  # convert_hf_to_gguf reorders q/k rows for these (interleaved rotary halves)
_LORA_FORMAT = b"1"  # part of the cache key: bump when lora_to_gguf's output changes
_END = object()


def _permute_rows(weight, n_head: int):
    """The row order convert_hf_to_gguf gives q/k weights of llama models; applied to lora_B (delta = B @ A)."""
    return weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(
        weight.shape
    )


def lora_to_gguf(adapter_dir: Path, base_gguf: Path, out: Path) -> Path:
    """Write a peft LoRA adapter (safetensors) as a llama.cpp GGUF LoRA for `base_gguf`'s architecture."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("modules_to_save"):
        raise LLMError(f"{adapter_dir}: rank/alpha patterns and modules_to_save are not supported by llama.cpp")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("use_rslora"):
        alpha *= rank**0.5  # llama.cpp scales by alpha / r; rsLoRA means alpha / sqrt(r)
    reader = gguf.GGUFReader(base_gguf)
    arch = str(reader.get_field("general.architecture").contents())
    n_head = int(reader.get_field(f"{arch}.attention.head_count").contents())
    n_head_kv = int(reader.get_field(f"{arch}.attention.head_count_kv").contents())
    tensors = load_file(adapter_dir / "adapter_model.safetensors")
    writer = gguf.GGUFWriter(out, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for key in sorted(k for k in tensors if k.endswith("lora_A.weight")):
        # base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight
        parts = key.split(".")
        if "layers" not in parts or parts[-3] not in _GGUF_NAMES:
            raise LLMError(f"{adapter_dir}: LoRA tensor {key} has no llama.cpp mapping")
        layer, module = int(parts[parts.index("layers") + 1]), parts[-3]
        a = tensors[key].astype(np.float32)
        b = tensors[key.replace("lora_A", "lora_B")].astype(np.float32)
        if arch in _ROPE_PERMUTED and module in ("q_proj", "k_proj"):
            b = _permute_rows(b, n_head if module == "q_proj" else n_head_kv)
        stem = f"blk.{layer}.{_GGUF_NAMES[module]}.weight"
        writer.add_tensor(f"{stem}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{stem}.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def cached_gguf_lora(adapter_dir: Path, base_gguf: Path, models_dir: Path) -> Path:
    """The adapter as a GGUF LoRA, converted once per adapter content (a registry champion is immutable)."""
    digest = hashlib.sha256(_LORA_FORMAT)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((adapter_dir / name).read_bytes())
    digest.update(base_gguf.name.encode())
    return _made_once(models_dir / "gguf-lora" / f"{digest.hexdigest()[:16]}.gguf",
                      lambda partial: lora_to_gguf(adapter_dir, base_gguf, partial))


def _made_once(target: Path, make) -> Path:
    """`target`, written by `make(partial)` the first time: atomic, so concurrent workers making the same file both
    end up with a complete one."""
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        make(partial)
        partial.rename(target)
    return target


def _slow(qtype_name: str):
    """Which tensor types `requantised` converts to `qtype_name`."""
    import gguf

    kinds = gguf.GGMLQuantizationType
    if qtype_name == "Q8_0":
        return lambda kind: kind not in (kinds.F32, kinds.F16, kinds.BF16, kinds.Q8_0)
    return lambda kind: kind == kinds.Q4_1


def requantised(src: Path, qtype_name: str, out: Path) -> Path:
    """`src` with its slow tensors requantised to `qtype_name` (gguf-py, numpy), other tensors and metadata as they
    are: every Q4_1 tensor, and for Q8_0 also every other block-quantised type (Qwen's Q5_0 and K-quants), which 8
    bits hold with little loss; Q4_0 takes only Q4_1 (from a 5- or 6-bit type it would lose precision)."""
    import gguf

    qtype = gguf.GGMLQuantizationType[qtype_name]
    slow = _slow(qtype_name)
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(out, str(reader.get_field("general.architecture").contents()))
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub)
    tensors = []
    for tensor in reader.tensors:
        if slow(tensor.tensor_type):
            tensors.append((gguf.quants.quantize(gguf.quants.dequantize(tensor.data, tensor.tensor_type), qtype),
                            qtype, tensor.name))
        else:
            tensors.append((tensor.data, tensor.tensor_type, tensor.name))
    for data, kind, name in tensors:
        writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, kind)  # byte shape: the writer converts
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data, _, _ in tensors:
        writer.write_tensor_data(data)
    writer.close()
    return out


def serving_gguf(gguf: Path, gguf_type: str, models_dir: Path) -> Path:
    """The file llama.cpp serves: `gguf` itself, or (FINASSIST_LLM_GGUF_TYPE) requantised (`requantised`), made once
    per models folder and kept; a file with nothing to requantise is served as it is. Qwen2.5-Coder-0.5B's Q5_0 and
    K-quant tensors as Q8_0 prefill 1.28× faster on 2 threads (129 vs 101 tokens/s, benchmarks/llama_prefill.py)."""
    target = models_dir / "gguf" / f"{gguf.stem}.{gguf_type}.gguf"
    if gguf_type == "packaged" or target.is_file():
        return gguf if gguf_type == "packaged" else target
    import gguf as gguf_lib

    slow = _slow(gguf_type)
    if not any(slow(t.tensor_type) for t in gguf_lib.GGUFReader(gguf).tensors):
        return gguf

    def make(partial: Path) -> None:
        log.info("requantising %s to %s for llama.cpp (once)", gguf.name, gguf_type)
        requantised(gguf, gguf_type, partial)

    return _made_once(target, make)


class LlamaCppLLM(LLM):
    """llama.cpp in this process with `parallel` slots; thread-safe: concurrent calls decode in one batch."""

    def __init__(
        self,
        gguf: Path | None = None,
        adapter: str | Path | None = None,
        models_dir: Path = Path(".finassist/models"),
        context_window: int | None = None,
        parallel: int = 4,
        threads: int = 1,
        adapter_label: str | None = None,
        model_name: str = PACKAGED_MODEL,
    ):
        adapter_dir = Path(adapter) if adapter else None
        meta: dict = {}
        if adapter_dir is not None:  # fail in milliseconds on a wrong adapter, before loading anything
            if not (adapter_dir / "adapter_config.json").is_file():
                raise LLMError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
            meta = read_adapter_meta(adapter_dir)
            if meta.get("base_model") not in (None, model_name):
                raise LLMError(f"{adapter_label or adapter_dir} was trained on {meta['base_model']}, not on the "
                               f"configured base model {model_name} (FINASSIST_LLM_MODEL)")
        import xllamacpp
        from transformers import AutoTokenizer

        gguf = Path(gguf) if gguf else packaged_gguf()
        self.tokenizer = _training_tokenizer(AutoTokenizer, gguf, models_dir, model_name)
        if not getattr(self.tokenizer, "chat_template", None):
            raise LLMError(f"{model_name} has no chat template; use an instruct/chat model")
        self._tokenizer_lock = threading.Lock()  # HF fast tokenizers raise "Already borrowed" under concurrency
        window = context_window or _trained_context(gguf)
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = window
        params.n_parallel = parallel
        params.kv_unified = True  # slots share one KV cache: any single request may use the whole window
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
        params.cache_ram_mib = 256  # host-RAM prompt cache; its default (8 GiB) is more than this machine has
        params.verbosity = 0
        # The wheel also opens an HTTP listener on 127.0.0.1; a random key nobody knows closes it to other users.
        params.api_keys = [secrets.token_hex(16)]
        if adapter_dir is not None:
            lora = cached_gguf_lora(adapter_dir, gguf, models_dir)
            params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(lora), 1.0)]
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:
            raise LLMError(f"llama.cpp could not load {gguf.name}: {exc}") from exc
        self.batch_size = parallel
        self.slots = parallel
        self.info = ModelInfo(
            backend="llamacpp",
            model=model_name,
            adapter=(adapter_label or str(adapter)) if adapter else None,
            prompt_version=meta.get("prompt_version"),
            context_window=window,
        )

    def _input_ids(self, messages: Sequence[Message]) -> list[int]:
        with self._tokenizer_lock:
            ids = self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
            )
        return list(ids)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._input_ids(messages))

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str | Generation]:
        ids = self._input_ids(messages)
        if len(ids) >= self.info.context_window:
            raise LLMError(f"prompt of {len(ids)} tokens does not fit the {self.info.context_window}")
        deadline = params.deadline()
        max_new = min(params.max_new_tokens, self.info.context_window - len(ids))
        request = {
            "prompt": ids,  # token ids from the training tokenizer: the engine sees exactly what we counted
            "n_predict": max_new,
            "stream": True,
            "return_progress": True,  # chunks during prefill too, so a cancel or deadline is seen there
            "temperature": params.temperature,  # <= 0: greedy
            "top_p": params.top_p,
            "top_k": 0,
            "cache_prompt": True,
            "logprobs": 1,  # the chosen token's id and log-probability, per chunk (exact counts, parity checks)
        }
        cancel = threading.Event()
        chunks: queue.Queue = queue.Queue()

        def on_chunk(chunk: dict) -> bool:  # llama.cpp's thread; True cancels the request
            chunks.put(chunk)
            return cancel.is_set() or (deadline is not None and time.monotonic() > deadline)

        def run() -> None:
            try:
                self._server.handle_completions(request, on_chunk)
            except BaseException as exc:  # reported to the consumer below
                chunks.put(exc)
            finally:
                chunks.put(_END)

        started = time.monotonic()
        first: float | None = None
        pieces: list[str] = []
        tokens: list[tuple[int, float]] = []
        final: dict = {}
        worker = threading.Thread(target=run, name="llamacpp-request", daemon=True)
        worker.start()
        try:
            while True:
                wait = None if deadline is None else deadline - time.monotonic()
                try:
                    item = chunks.get(timeout=None if wait is None else max(wait, 0.0))
                except queue.Empty:
                    raise LLMTimeoutError(f"generation passed its {params.timeout_s:g} s budget") from None
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise LLMError(f"generation failed: {item}") from item
                if "error" in item:
                    raise LLMError(f"generation failed: {item['error']}")
                if deadline is not None and time.monotonic() > deadline:
                    raise LLMTimeoutError(f"generation passed its {params.timeout_s:g} s budget")
                choice = item["choices"][0]
                tokens += [(t["id"], t["logprob"]) for t in (choice.get("logprobs") or {}).get("content", ())]
                if choice.get("text"):
                    if first is None:
                        first = time.monotonic() - started
                    pieces.append(choice["text"])
                    yield choice["text"]
                if choice.get("finish_reason"):
                    final = item
        finally:
            cancel.set()  # consumer gone (client disconnected) or timed out: the next chunk cancels the slot
        usage = final.get("usage") or {}
        yield Generation(
            text="".join(pieces).strip(),
            prompt_tokens=int(usage.get("prompt_tokens", len(ids))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason="length" if final["choices"][0]["finish_reason"] == "length" else "stop",
            seconds=time.monotonic() - started,
            first_token_s=first,
            extra={
                "token_ids": [t for t, _ in tokens],
                "logprobs": [lp for _, lp in tokens],
                "cached_prompt_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            },
        )

    def generate_batch(self, conversations: Sequence[Sequence[Message]], params: GenerationParams) -> list[Generation]:
        """Several prompts at once: each takes a slot and they decode in the same llama.cpp batch."""
        with ThreadPoolExecutor(max_workers=max(1, min(self.slots, len(conversations)))) as pool:
            return list(pool.map(lambda messages: self.generate(messages, params), conversations))

    def close(self) -> None:
        server, self._server = getattr(self, "_server", None), None
        del server  # the destructor stops llama.cpp's loop thread and frees the model


def _training_tokenizer(auto_tokenizer, gguf: Path, models_dir: Path, model_name: str):
    """The tokenizer training uses: the model's converted folder (models_dir/<label>) when present, else the same
    GGUF's vocabulary and chat template, which that folder is converted from."""
    converted = models_dir / model_name
    if (converted / "tokenizer.json").is_file():
        return auto_tokenizer.from_pretrained(str(converted))
    return auto_tokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def _trained_context(gguf: Path) -> int:
    import gguf as gguf_lib

    reader = gguf_lib.GGUFReader(gguf)
    arch = str(reader.get_field("general.architecture").contents())
    field = reader.get_field(f"{arch}.context_length")
    return int(field.contents()) if field else 4096
