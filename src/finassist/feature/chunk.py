"""Chunking: token-aware windows measured with the embedding model's own tokenizer. Pure given the tokenizer.

Every chunk is "<headline>\\n\\n<window of summary+body>" and never exceeds the model's max_seq_length once the
model adds its special tokens (the reference course chunked to 384 tokens for a 256-token model and so silently
truncated). WordPiece splits on whitespace and punctuation first, so token counts of the parts add up exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from finassist.domain import Chunk, ChunkedArticle, CleanArticle
from finassist.feature.guard import Budget
from finassist.tables import TableContext

MAX_HEADLINE_SHARE = 4  # a headline may use at most 1/4 of a chunk's tokens
MAX_TABLE_CONTEXT_SHARE = 3  # a table's repeated title + header rows may use at most 1/3 of a window


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
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None],
    size: int,
    overlap: int,
    text: str = "",
    reserve: Callable[[int], int] | None = None,
):
    """Yield (start, end) token windows; an end never splits a word into wordpieces when that can be avoided, and a
    window after the first starts on a word, not on punctuation. `reserve(start)`: tokens a window starting at token
    `start` must leave free (for a table header repeated in front of it)."""
    n = len(offsets)
    start = 0
    while start < n:
        reserved = reserve(start) if reserve is not None else 0
        avail = max(1, size - reserved)
        end = min(start + avail, n)
        if end < n:
            snapped = end
            while (
                snapped > start + avail // 2
                and word_ids[snapped] is not None
                and (word_ids[snapped] == word_ids[snapped - 1])
            ):
                snapped -= 1
            end = snapped
        yield start, end
        if end >= n:
            return
        # A shortened window overlaps less, so that windows still advance by a fair share of their length.
        nxt = max(end - (min(overlap, (end - start) // 2) if reserved else overlap), start + 1)
        # Start the next window on a word boundary too, skipping punctuation left over from the previous sentence.
        while nxt < end - 1 and (
            (word_ids[nxt] is not None and word_ids[nxt] == word_ids[nxt - 1])
            or (text and not text[offsets[nxt][0]].isalnum() and text[offsets[nxt][0]] not in "$€£(\"'")
        ):
            nxt += 1
        if text and overlap and reserve is None:
            # In prose, start on a sentence, so that no chunk opens mid-sentence ("Semiconductor is …"): the one the
            # overlap starts in when it began within two overlaps of the end, else the next one inside the overlap.
            lowest = max(start + (end - start) // 2, end - 2 * overlap, start + 1)
            nxt = next((i for i in range(nxt, lowest - 1, -1) if _opens_sentence(text, offsets, i)), None) or next(
                (i for i in range(nxt + 1, end - 1) if _opens_sentence(text, offsets, i)), nxt)
        elif reserve is not None and text:
            # In a text with tables, start on a new line (a whole row) when the overlap holds one.
            row = nxt
            while row < end - 1 and "\n" not in text[offsets[row - 1][1] : offsets[row][0]]:
                row += 1
            if row < end - 1:
                nxt = row
        start = nxt


_SENTENCE_END = frozenset(".!?")
_CLOSERS = frozenset("\"'”’)")
_OPENERS = frozenset("$€£\"“(")


def _opens_sentence(text: str, offsets: Sequence[tuple[int, int]], i: int) -> bool:
    """Token i starts a sentence: after a line break, or after . ! ? (and a closing quote) and a space, on a capital,
    a digit or an opening quote / currency sign."""
    at, before = offsets[i][0], offsets[i - 1][1]
    gap = text[before:at]
    if not gap or not gap.isspace() or not (text[at].isupper() or text[at].isdigit() or text[at] in _OPENERS):
        return False
    if "\n" in gap:
        return True
    last = before - 1
    while last > 0 and text[last] in _CLOSERS:
        last -= 1
    return text[last] in _SENTENCE_END


class _TableHeaders:
    """The title + header rows a window starting at a given token repeats, and their token count (computed once
    per distinct prefix: a table has at most a handful)."""

    def __init__(self, doc: str, offsets: Sequence[tuple[int, int]], tokenizer: Tokenizer, limit: int):
        self.doc, self.offsets, self.tokenizer, self.limit = doc, offsets, tokenizer, limit
        tables = TableContext(doc) if "|" in doc and limit >= 2 else None
        self.tables = tables if tables is not None and tables.tables else None
        self._cache: dict[tuple[int, int], tuple[str, int]] = {}

    def _fitted(self, start: int) -> tuple[str, int]:
        # Cached per (table, header rows): building the prefix per window would cost its length every window.
        key = self.tables.locate(self.offsets[start][0]) if self.tables is not None else None
        if key is None:
            return "", 0
        if key not in self._cache:
            raw = self.tables.text(key)  # type: ignore[union-attr]
            text = _truncate_to_tokens(self.tokenizer, raw, self.limit - 1)  # "…" may add a token
            self._cache[key] = (text, len(self.tokenizer.encode(text, add_special_tokens=False).ids))
        return self._cache[key]

    def text(self, start: int) -> str:
        return self._fitted(start)[0]

    def tokens(self, start: int) -> int:
        return self._fitted(start)[1]


# Long texts are encoded in whitespace-aligned pieces of about this many characters: the tokenizer's own cost per MB
# doubled from 10 KB to 2 MB on one string (0.73 → 1.6 s/MB), and pieces of one batch also encode in parallel.
SEGMENT_CHARS = 16_000


def _segments(doc: str) -> list[int]:
    """Start offsets of whitespace-aligned pieces of `doc` (WordPiece splits on whitespace first, so encoding the
    pieces gives the same tokens as encoding the whole)."""
    starts, pos = [0], 0
    while len(doc) - pos > SEGMENT_CHARS:
        cut = max(doc.rfind(" ", pos, pos + SEGMENT_CHARS), doc.rfind("\n", pos, pos + SEGMENT_CHARS))
        pos = cut + 1 if cut > pos else pos + SEGMENT_CHARS  # no whitespace at all: cut anyway
        starts.append(pos)
    return starts


def _encode_docs(tokenizer: Tokenizer, docs: Sequence[str]) -> list[tuple[list[tuple[int, int]], list[int | None]]]:
    """(offsets, word ids) of each doc, as one encoding of the whole doc would give them, in one batch call."""
    starts = [_segments(d) for d in docs]
    pieces = [d[a:b] for d, st in zip(docs, starts, strict=True) for a, b in zip(st, [*st[1:], len(d)], strict=True)]
    encodings = iter(tokenizer.encode_batch(pieces, add_special_tokens=False))
    out = []
    for st in starts:
        offsets: list[tuple[int, int]] = []
        word_ids: list[int | None] = []
        words = 0
        for start in st:
            enc = next(encodings)
            offsets.extend((a + start, b + start) for a, b in enc.offsets)
            ids = enc.word_ids
            word_ids.extend(None if w is None else w + words for w in ids)
            words += max((w for w in ids if w is not None), default=-1) + 1
        out.append((offsets, word_ids))
    return out


def chunk_articles(
    articles: Sequence[CleanArticle], tokenizer: Tokenizer, spec: ChunkSpec, budget_s: float | None = None
) -> list[ChunkedArticle]:
    """Chunk a batch of clean articles (one tokenizer call for the whole batch). An article that takes more than
    `budget_s` seconds to cut raises `BudgetExceeded`."""
    headlines = [_truncate_to_tokens(tokenizer, a.headline, spec.budget // MAX_HEADLINE_SHARE) for a in articles]
    docs = ["\n\n".join(p for p in (a.summary, a.body) if p) for a in articles]
    head_lens = [len(e.ids) for e in tokenizer.encode_batch(headlines, add_special_tokens=False)]
    encodings = _encode_docs(tokenizer, docs)
    out = []
    for article, headline, head_len, doc, (offsets, word_ids) in zip(
        articles, headlines, head_lens, docs, encodings, strict=True
    ):
        aid = article.article.id
        if not doc:
            chunks: tuple[Chunk, ...] = (Chunk(aid, 0, headline),)
        else:
            budget = Budget(budget_s) if budget_s else None
            size = spec.budget - head_len
            context = _TableHeaders(doc, offsets, tokenizer, size // MAX_TABLE_CONTEXT_SHARE)
            reserve = context.tokens if context.tables is not None else None
            pieces = []
            windows = _windows(offsets, word_ids, size, min(spec.overlap, size // 2), doc, reserve)
            for i, (s, e) in enumerate(windows):
                if budget is not None and not i % 64:
                    budget.check("chunk")
                prefix = context.text(s) if reserve else ""
                window = doc[offsets[s][0] : offsets[e - 1][1]]
                text = f"{headline}\n\n{prefix}\n{window}" if prefix else f"{headline}\n\n{window}"
                pieces.append(Chunk(aid, i, text))
            # A text of characters the tokenizer drops (found by fuzzing: a lone U+FFFD) has no window: headline only.
            chunks = tuple(pieces) or (Chunk(aid, 0, headline),)
        out.append(ChunkedArticle(clean=article, chunks=chunks))
    return out
