"""The embedder: the packaged model runs on transformers alone, with sentence-transformers' exact vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from finassist.embed import Embedder, default_model_path, plain_layout

TEXTS = [
    "Voltrix raises its full-year revenue guidance to $2.54 billion",
    "  Brookward Bank cuts its dividend  ",
    "",
    "Ünïcödé €1,234.5 — 株式 🚀",
    "Q3 2023 | FY2022 | 10-K",
    "word " * 600,  # past the 256-token limit: truncated the same way
]


def test_the_packaged_model_gives_sentence_transformers_vectors(embedder):
    from sentence_transformers import SentenceTransformer

    assert embedder.layout is not None  # the fast path is the one under test
    want = SentenceTransformer(default_model_path()).encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    for batch_size in (1, 4, 64):
        got = embedder.encode(TEXTS, batch_size=batch_size)
        assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
        assert np.abs(got - want).max() < 1e-5, batch_size
    assert np.allclose(np.linalg.norm(embedder.encode(TEXTS), axis=1), 1.0, atol=1e-5)
    assert embedder.max_seq_length == 256 and embedder.dim == 384
    assert len(embedder.tokenizer.encode("Voltrix raises guidance").ids) > 2


def test_serving_and_ingest_processes_do_not_import_sentence_transformers():
    code = ("import sys; from finassist.embed import get_embedder; get_embedder().encode(['x']); "
            "print('sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "False"


def copy_model(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(default_model_path(), folder)
    return folder


def test_a_model_with_another_layout_goes_through_sentence_transformers(tmp_path):
    folder = copy_model(tmp_path)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}))
    assert plain_layout(str(folder)) is None
    max_pooled = Embedder(str(folder))
    assert max_pooled.layout is None
    vectors = max_pooled.encode(TEXTS[:2])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # not the mean-pooled vectors: the model's own pooling was honoured
    assert np.abs(vectors - Embedder().encode(TEXTS[:2])).max() > 1e-3


@pytest.mark.parametrize("damage", ["no modules.json", "a Dense module", "CLS pooling"])
def test_layouts_are_read_from_the_folder(tmp_path, damage):
    folder = copy_model(tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    if damage == "no modules.json":
        (folder / "modules.json").unlink()
        assert plain_layout(str(folder)) is None
    elif damage == "a Dense module":
        modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
        (folder / "modules.json").write_text(json.dumps(modules))
        assert plain_layout(str(folder)) is None
    else:
        pooling = folder / "1_Pooling" / "config.json"
        config = json.loads(pooling.read_text())
        pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
        layout = plain_layout(str(folder))
        assert layout is not None and layout.pooling == "cls" and layout.max_seq_length == 256
