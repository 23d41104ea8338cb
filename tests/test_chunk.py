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
