"""The sparse (BM25) leg's vectors: Qdrant's own BM25 encoder (qdrant-edge `Bm25`), the same for both engines.

Documents carry term-frequency weights; the store's IDF modifier supplies the corpus statistics at query time, so
nothing here keeps a vocabulary. Text goes through `textsearch.search_text` first, documents and queries alike,
with this encoder's stopwords (so word pairs skip the words BM25 drops).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import qdrant_edge as qe

from finassist.textsearch import search_text

# The sparse named vector. Its name carries the version of the text encoding (`search_text` + the BM25 settings):
# change it whenever documents would be tokenised differently, so a store written with the old encoding is detected
# and rebuilt by `finassist store reindex`, never searched with queries encoded the new way.
# v2: grouped and decimal numbers are one token (1,496.5 → 1496p5) and adjacent word pairs are terms too ("total
# sales" → totalsales); "bm25" (v1) had neither.
SPARSE_VECTOR = "bm25v2"
DENSE_VECTOR = "dense"  # the dense named vector

# English tokenizer, stopwords and Snowball stemmer (the encoder's defaults), k=1.2, b=0.75.
_ENCODER = qe.Bm25(qe.Bm25Config())


@dataclass(frozen=True)
class SparseVec:
    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.indices)


def is_stopword(word: str) -> bool:
    """Whether the encoder drops `word` (its own English stopword list)."""
    return _stopword(word.lower())


@lru_cache(maxsize=65_536)
def _stopword(word: str) -> bool:
    return not _ENCODER.embed_query(word).indices


def sparse_document(text: str) -> SparseVec:
    """A chunk's BM25 term weights (term frequency, length-normalised)."""
    s = _ENCODER.embed_document(search_text(text, is_stopword))
    return SparseVec(tuple(s.indices), tuple(s.values))


def sparse_query(text: str) -> SparseVec:
    """A query's terms, each weight 1 (the IDF comes from the store)."""
    s = _ENCODER.embed_query(search_text(text, is_stopword))
    return SparseVec(tuple(s.indices), tuple(s.values))
