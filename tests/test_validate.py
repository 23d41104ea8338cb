import json

import pytest

from finassist.domain import NewsArticle, Quarantined, RawRecord
from finassist.feature.validate import validate_record

from conftest import article


def check(payload, max_bytes=100_000):
    return validate_record(RawRecord("test:1", payload), max_bytes=max_bytes)


def test_valid_line_becomes_article_with_utc_times_and_string_id():
    a = check(
        json.dumps(
            article(42, symbols=["nvlt", " hrbr ", "NVLT"], created_at="2026-09-01T09:30:00-04:00", updated_at=None)
        )
    )
    assert isinstance(a, NewsArticle)
    assert a.id == "42"
    assert a.symbols == ("NVLT", "HRBR")
    assert a.created_at.isoformat() == "2026-09-01T13:30:00+00:00"
    assert a.updated_at == a.created_at  # missing updated_at defaults to created_at


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (json.dumps(article(1)).encode()[:-1] + b"\xff}", "not valid UTF-8"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({k: v for k, v in article(1).items() if k != "created_at"}), "created_at"),
        (json.dumps(article(1, created_at="yesterday")), "created_at"),
        (json.dumps(article(1, headline="   ")), "headline"),
        (json.dumps(article(1, headline=None)), "headline"),
        (json.dumps(article(1, symbols="AAPL")), "symbols"),
        (json.dumps(article(1, symbols=["not a ticker!"])), "ticker"),
        (json.dumps(article(True)), "id"),
        (json.dumps(article(-5)), "id"),
        (json.dumps(article(1, url="javascript:alert(1)")), "url must be an http(s) URL"),
        (json.dumps(article(1, url="data:text/html,<b>x</b>")), "url must be an http(s) URL"),
        (json.dumps(article(1, created_at="2026-09-02T00:00:00Z", updated_at="2026-09-01T00:00:00Z")), "before"),
    ],
)
def test_bad_records_are_quarantined_with_a_reason(payload, reason):
    q = check(payload)
    assert isinstance(q, Quarantined)
    assert q.step == "validate"
    assert reason in q.reason
    assert q.origin == "test:1"


def test_absurdly_large_record_is_quarantined_without_parsing():
    huge = json.dumps(article(1, content="x" * 5000))
    q = check(huge, max_bytes=1000)
    assert isinstance(q, Quarantined)
    assert "too large" in q.reason
    assert len(q.raw) <= 2000  # the quarantine keeps an excerpt, not the whole record


def test_dict_payloads_from_api_clients_validate_too():
    assert isinstance(check(article(7)), NewsArticle)
