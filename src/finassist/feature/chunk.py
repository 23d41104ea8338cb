"""Chunking: token-aware windows measured with the embedding model's own tokenizer. Pure given the tokenizer.

Every chunk is "<headline>\\n\\n<window of summary+body>" and never exceeds the model's max_seq_length once the
model adds its special tokens (the reference course chunked to 384 tokens for a 256-token model and so silently
truncated). WordPiece splits on whitespace and punctuation first, so token counts of the parts add up exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from finassist.domain import Chunk, ChunkedArticle, CleanArticle
from finassist.feature.guard import Budget

MAX_HEADLINE_SHARE = 4  # a headline may use at most 1/4 of a chunk's tokens


@dataclass(frozen=True)
class ChunkSpec:
    """How to cut: tokens per chunk (headline included), overlap between windows, the model's hard limit."""

    chunk_tokens: int
    overlap: int
    max_seq_length: int
    special_tokens: int = 2  # [CLS] ... [SEP]

    @property
    def budget(self) -> int:
        return min(self.chunk_tokens, self.max_seq_length - self.special_tokens)


def _truncate_to_tokens(tokenizer: Tokenizer, text: str, limit: int) -> str:
    enc = tokenizer.encode(text, add_special_tokens=False)
    if len(enc.ids) <= limit:
        return text
    return text[: enc.offsets[limit - 1][1]].rstrip() + "…"


def _windows(
    offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None], size: int, overlap: int, text: str = ""
):
    """Yield (start, end) token windows; an end never splits a word into wordpieces when that can be avoided, and a
    window after the first starts on a word, not on punctuation."""
    n = len(offsets)
    start = 0
    while start < n:
        end = min(start + size, n)
        if end < n:
            snapped = end
            while (
                snapped > start + size // 2
                and word_ids[snapped] is not None
                and (word_ids[snapped] == word_ids[snapped - 1])
            ):
                snapped -= 1
            end = snapped
        yield start, end
        if end >= n:
            return
        nxt = max(end - overlap, start + 1)
        # Start the next window on a word boundary too, skipping punctuation left over from the previous sentence.
        while nxt < end - 1 and (
            (word_ids[nxt] is not None and word_ids[nxt] == word_ids[nxt - 1])
            or (text and not text[offsets[nxt][0]].isalnum() and text[offsets[nxt][0]] not in "$€£(\"'")
        ):
            nxt += 1
        start = nxt


def chunk_articles(
    articles: Sequence[CleanArticle], tokenizer: Tokenizer, spec: ChunkSpec, budget_s: float | None = None
) -> list[ChunkedArticle]:
    """Chunk a batch of clean articles (one tokenizer call for the whole batch). An article that takes more than
    `budget_s` seconds to cut raises `BudgetExceeded`."""
    headlines = [_truncate_to_tokens(tokenizer, a.headline, spec.budget // MAX_HEADLINE_SHARE) for a in articles]
    docs = ["\n\n".join(p for p in (a.summary, a.body) if p) for a in articles]
    head_lens = [len(e.ids) for e in tokenizer.encode_batch(headlines, add_special_tokens=False)]
    encodings = tokenizer.encode_batch(docs, add_special_tokens=False)
    out = []
    for article, headline, head_len, doc, enc in zip(articles, headlines, head_lens, docs, encodings, strict=True):
        aid = article.article.id
        if not doc:
            chunks: tuple[Chunk, ...] = (Chunk(aid, 0, headline),)
        else:
            budget = Budget(budget_s) if budget_s else None
            size = spec.budget - head_len
            # Encoding.offsets builds a new list on every access: read it once (per window made it quadratic).
            offsets = enc.offsets
            pieces = []
            for i, (s, e) in enumerate(_windows(offsets, enc.word_ids, size, min(spec.overlap, size // 2), doc)):
                if budget is not None and not i % 64:
                    budget.check("chunk")
                pieces.append(Chunk(aid, i, f"{headline}\n\n{doc[offsets[s][0] : offsets[e - 1][1]]}"))
            chunks = tuple(pieces)
        out.append(ChunkedArticle(clean=article, chunks=chunks))
    return out
