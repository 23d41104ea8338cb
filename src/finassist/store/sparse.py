"""The sparse (BM25) leg's vectors: Qdrant's own BM25 encoder (qdrant-edge `Bm25`), the same for both engines.

Documents carry term-frequency weights; the store's IDF modifier supplies the corpus statistics at query time, so
nothing here keeps a vocabulary. Text goes through `textsearch.search_text` first, documents and queries alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import qdrant_edge as qe

from finassist.textsearch import search_text

SPARSE_VECTOR = "bm25"  # the sparse named vector
DENSE_VECTOR = "dense"  # the dense named vector

# English tokenizer, stopwords and Snowball stemmer (the encoder's defaults), k=1.2, b=0.75.
_ENCODER = qe.Bm25(qe.Bm25Config())


@dataclass(frozen=True)
class SparseVec:
    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.indices)


def sparse_document(text: str) -> SparseVec:
    """A chunk's BM25 term weights (term frequency, length-normalised)."""
    s = _ENCODER.embed_document(search_text(text))
    return SparseVec(tuple(s.indices), tuple(s.values))


def sparse_query(text: str) -> SparseVec:
    """A query's terms, each weight 1 (the IDF comes from the store)."""
    s = _ENCODER.embed_query(search_text(text))
    return SparseVec(tuple(s.indices), tuple(s.values))
