import pytest

from finassist.domain import CleanArticle, NewsArticle
from finassist.feature.chunk import ChunkSpec, chunk_articles

SPEC = ChunkSpec(chunk_tokens=200, overlap=40, max_seq_length=256)


def clean(aid="1", headline="Novalith Semiconductors beats estimates", summary="", body=""):
    a = NewsArticle(id=aid, headline=headline, created_at="2026-09-01T00:00:00Z")
    return CleanArticle(article=a, headline=headline, summary=summary, body=body)


def long_body(words=3000):
    sentences = [
        f"Segment {i} revenue grew {i % 17} percent to ${i}.{i % 10} million year over year."
        for i in range(words // 11)
    ]
    return "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5))


def test_no_chunk_exceeds_the_models_max_sequence_length(tokenizer):
    spec = ChunkSpec(chunk_tokens=1000, overlap=40, max_seq_length=256)  # asks for more than the model takes
    [out] = chunk_articles([clean(body=long_body())], tokenizer, spec)
    lengths = [len(tokenizer.encode(c.text, add_special_tokens=True).ids) for c in out.chunks]
    assert max(lengths) <= 256
    assert len(out.chunks) > 10


def test_chunks_carry_headline_article_id_and_positions(tokenizer):
    [out] = chunk_articles([clean(aid="77", summary="Short summary.", body=long_body(800))], tokenizer, SPEC)
    assert [c.index for c in out.chunks] == list(range(len(out.chunks)))
    assert all(c.article_id == "77" for c in out.chunks)
    assert all(c.text.startswith("Novalith Semiconductors beats estimates\n\n") for c in out.chunks)
    assert "Short summary." in out.chunks[0].text
    assert all(len(tokenizer.encode(c.text, add_special_tokens=False).ids) <= SPEC.chunk_tokens for c in out.chunks)


def test_consecutive_chunks_overlap_and_cover_the_whole_body(tokenizer):
    body = long_body(1500)
    [out] = chunk_articles([clean(body=body)], tokenizer, SPEC)
    head = "Novalith Semiconductors beats estimates\n\n"
    pieces = [c.text[len(head) :] for c in out.chunks]
    for a, b in zip(pieces, pieces[1:], strict=False):
        assert b[:30] in a  # the next window starts inside the previous one
    assert pieces[0].startswith(body[:50])
    assert pieces[-1].endswith(body[-50:])
    words = set(body.split())
    assert words <= set(" ".join(pieces).split())


def test_headline_only_article_is_one_chunk(tokenizer):
    [out] = chunk_articles([clean(headline="Harborline cuts its dividend")], tokenizer, SPEC)
    assert [c.text for c in out.chunks] == ["Harborline cuts its dividend"]


def test_absurdly_long_headline_is_truncated_to_leave_room_for_text(tokenizer):
    headline = "word " * 390
    [out] = chunk_articles([clean(headline=headline, body=long_body(400))], tokenizer, SPEC)
    head_tokens = len(tokenizer.encode(out.chunks[0].text.split("\n\n")[0], add_special_tokens=False).ids)
    assert head_tokens <= SPEC.chunk_tokens // 4 + 1
    assert all(len(tokenizer.encode(c.text).ids) <= 256 for c in out.chunks)


def test_batch_keeps_articles_apart(tokenizer):
    outs = chunk_articles([clean(aid=str(i), body=long_body(300 * i)) for i in range(1, 4)], tokenizer, SPEC)
    assert [o.clean.article.id for o in outs] == ["1", "2", "3"]
    assert len(outs[0].chunks) < len(outs[2].chunks)


@pytest.mark.parametrize("overlap", [0, 10, 60])
def test_chunking_terminates_for_any_overlap(tokenizer, overlap):
    spec = ChunkSpec(chunk_tokens=128, overlap=overlap, max_seq_length=256)
    [out] = chunk_articles([clean(body=long_body(600))], tokenizer, spec)
    assert 3 < len(out.chunks) < 100


def test_later_windows_start_on_a_word_not_on_punctuation(tokenizer):
    [out] = chunk_articles([clean(body=long_body(2000))], tokenizer, SPEC)
    head = "Novalith Semiconductors beats estimates\n\n"
    starts = [c.text[len(head)] for c in out.chunks]
    assert all(ch.isalnum() or ch == "$" for ch in starts), starts


def test_later_windows_of_prose_start_on_a_sentence_and_hold_the_one_the_previous_window_cut(tokenizer):
    body = long_body(2000)
    [out] = chunk_articles([clean(body=body)], tokenizer, SPEC)
    head = "Novalith Semiconductors beats estimates\n\n"
    pieces = [c.text[len(head):] for c in out.chunks]
    assert all(p.startswith("Segment ") for p in pieces[1:]), [p[:20] for p in pieces]
    for a, b in zip(pieces, pieces[1:], strict=False):
        assert a[a.rindex("Segment "):] in b  # the sentence a window's end cut is in the next one from its start
        assert b[:30] in a  # and the windows still overlap
    # A sentence longer than two overlaps cannot be repeated whole: its window starts on a word, as before.
    long_sentence = " ".join(f"segment{i} grew" for i in range(400)) + "."
    [out] = chunk_articles([clean(body=long_sentence)], tokenizer, SPEC)
    assert len(out.chunks) > 3 and all(c.text[len(head)].isalnum() for c in out.chunks)


def long_table(rows=120):
    header = " |  | Fiscal | \n | 2019 | 2018 | 2017\n |  | (in millions) | "
    lines = [f"Segment {i} revenue | $ {i},{i % 1000:03d} | {i + 7}.{i % 10} | {i * 3}" for i in range(rows)]
    return "\n".join([header, *lines])


HEAD = "Novalith Semiconductors beats estimates\n\n"
REPEATED_HEADER = "|  | Fiscal |\n| 2019 | 2018 | 2017\n|  | (in millions) |\n"


def test_every_chunk_inside_a_table_repeats_its_title_and_header_rows_then_whole_rows(tokenizer):
    title = "Net sales by segment (in millions):"
    body = f"Brookward reported results on Monday.\n\n{title}\n{long_table()}\n\nThe company raised its outlook."
    [out] = chunk_articles([clean(body=body)], tokenizer, SPEC)
    assert len(out.chunks) > 5
    assert out.chunks[0].text.startswith(HEAD + "Brookward reported")  # holds title and header already
    for c in out.chunks[1:]:
        assert c.text.startswith(f"{HEAD}{title}\n{REPEATED_HEADER}Segment "), c.text[:200]
    lengths = [len(tokenizer.encode(c.text, add_special_tokens=True).ids) for c in out.chunks]
    assert max(lengths) <= 256
    assert all(n - 2 <= SPEC.chunk_tokens for n in lengths)


def test_table_chunks_still_cover_every_row_and_overlap(tokenizer):
    [out] = chunk_articles([clean(body=long_table(200))], tokenizer, SPEC)
    windows = [c.text[len(HEAD) :].removeprefix(REPEATED_HEADER) for c in out.chunks]
    assert all(c.text.startswith(HEAD + REPEATED_HEADER) for c in out.chunks[1:])  # no title: header rows only
    assert all(f"Segment {i} revenue |" in " ".join(windows) for i in range(200))
    for a, b in zip(windows, windows[1:], strict=False):
        assert b[:30] in a


def test_prose_without_tables_gets_no_prefix(tokenizer):
    [out] = chunk_articles([clean(body=long_body(1500))], tokenizer, SPEC)
    assert all("|" not in c.text for c in out.chunks)


def test_a_table_header_too_long_to_repeat_is_truncated_within_the_budget(tokenizer):
    wide = " | " + " | ".join(f"Column label {chr(65 + i % 26)}{chr(65 + i // 26)} for the year" for i in range(60))
    rows = "\n".join(f"Row {i} | " + " | ".join(str(i * j) for j in range(60)) for i in range(30))
    [out] = chunk_articles([clean(body=f"{wide}\n{rows}")], tokenizer, SPEC)
    assert all(len(tokenizer.encode(c.text, add_special_tokens=True).ids) <= 256 for c in out.chunks)
    assert all(c.text.startswith(HEAD + "| Column label AA") for c in out.chunks[1:])
    assert len(out.chunks) < 80


def test_chunking_a_huge_table_stays_linear(tokenizer):
    import time

    small, big = long_table(500), long_table(5000)
    t = time.perf_counter()
    chunk_articles([clean(body=small)], tokenizer, SPEC)
    t_small = time.perf_counter() - t
    t = time.perf_counter()
    chunk_articles([clean(body=big)], tokenizer, SPEC)
    t_big = time.perf_counter() - t
    assert t_big < 30 * max(t_small, 0.01)  # 10x the rows: ~10x the time, not 100x


def test_a_body_of_characters_the_tokenizer_drops_still_gives_the_headline_chunk(tokenizer):
    # Found by the fuzz test: U+FFFD alone (a repaired lone surrogate) encodes to no tokens at all.
    from finassist.domain import CleanArticle, NewsArticle

    a = NewsArticle.model_validate({"id": "1", "headline": "Acme", "created_at": "2026-10-01T00:00:00Z"})
    out = chunk_articles([CleanArticle(a, "Acme", "\ufffd", "")], tokenizer, ChunkSpec(200, 40, 256))
    assert [c.text for c in out[0].chunks] == ["Acme"]


def test_long_texts_encode_in_pieces_exactly_as_in_one_piece(tokenizer):
    # Pieces keep the tokenizer linear on 2 MB records; they must not change a single token boundary.
    import random

    from finassist.feature.chunk import SEGMENT_CHARS, _encode_docs

    rng = random.Random(7)
    words = ["Acme", "rose", "5%", "$2.54", "billion,", "FY2022", "naïve", "東京", "—", "\n\n", "|", "x" * 120]
    doc = " ".join(rng.choice(words) for _ in range(3 * SEGMENT_CHARS // 5))
    assert len(doc) > 2 * SEGMENT_CHARS
    whole = tokenizer.encode(doc, add_special_tokens=False)
    ((offsets, word_ids),) = _encode_docs(tokenizer, [doc])
    assert offsets == whole.offsets
    same_word = [a == b for a, b in zip(whole.word_ids, whole.word_ids[1:], strict=False)]
    assert same_word == [a == b for a, b in zip(word_ids, word_ids[1:], strict=False)]
