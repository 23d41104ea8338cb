"""Alpaca news sources against a local fake Alpaca server, through the real alpaca-py clients (no mocks)."""

from __future__ import annotations

import contextlib
import pickle
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from finassist.config import Settings
from finassist.domain import NewsArticle, RawRecord
from finassist.feature.sources import alpaca_stream
from finassist.feature.sources.alpaca import (
    AlpacaAuthError,
    AlpacaBackfillSource,
    AlpacaCredentialsError,
    AlpacaRequestError,
    alpaca_credentials,
    split_range,
)
from finassist.feature.sources.alpaca_stream import AlpacaStreamSource, StreamWatermark

from fake_alpaca import FakeAlpaca, make_article, parse_ts

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
CREDENTIAL_ENV_VARS = [
    name
    for field in ("alpaca_api_key", "alpaca_api_secret")
    for name in Settings.model_fields[field].validation_alias.choices
]


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as server:
        yield server


def settings_for(fake: FakeAlpaca, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "alpaca_api_key": fake.key,
        "alpaca_api_secret": fake.secret,
        "alpaca_data_url": fake.rest_url,
        "alpaca_stream_url": fake.stream_url,
        "alpaca_page_limit": 3,
        "stream_max_backoff_s": 0.4,
    }
    values.update(overrides)
    return Settings(**values)


def ids(records: list[RawRecord]) -> list[int]:
    return [r.payload["id"] for r in records]  # type: ignore[index]


def versions(records: list[RawRecord]) -> list[tuple[int, datetime]]:
    """(id, updated_at) of each record: one article version."""
    return [(r.payload["id"], parse_ts(r.payload["updated_at"])) for r in records]  # type: ignore[index]


def version_of(article: dict) -> tuple[int, datetime]:
    return article["id"], parse_ts(article["updated_at"])


def run_backfill(source: AlpacaBackfillSource) -> list[RawRecord]:
    out: list[RawRecord] = []
    flow = Dataflow("alpaca_backfill_test")
    op.output("out", op.input("in", flow, source), TestingSink(out))
    run_main(flow)
    return out


# --- split_range -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "n"),
    [
        (T0, T0 + 3 * HOUR, 3),
        (T0, T0 + timedelta(days=7, seconds=1, microseconds=7), 5),
        (T0, T0 + timedelta(minutes=1), 7),
        (T0, T0 + 10 * US, 10),
        (T0, T0 + HOUR, 1),
    ],
)
def test_split_range_gives_n_contiguous_slices_covering_the_range_exactly(start, end, n):
    slices = split_range(start, end, n)
    assert len(slices) == n
    assert slices[0][0] == start and slices[-1][1] == end
    assert all(s < e for s, e in slices)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(slices, slices[1:], strict=False))  # no gap, no overlap
    assert sum((e - s for s, e in slices), timedelta()) == end - start


def test_split_range_rejects_empty_ranges_and_zero_slices():
    with pytest.raises(ValueError):
        split_range(T0, T0, 2)
    with pytest.raises(ValueError):
        split_range(T0, T0 + HOUR, 0)


# --- credentials -----------------------------------------------------------------------------------------------


def test_missing_credentials_name_the_env_vars(monkeypatch):
    for name in CREDENTIAL_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AlpacaCredentialsError, match="ALPACA_API_SECRET") as err:
        alpaca_credentials(Settings(_env_file=None, alpaca_api_key="only-the-key"))
    assert isinstance(err.value, ValueError) and "only-the-key" not in str(err.value)
    with pytest.raises(AlpacaCredentialsError, match="ALPACA_API_KEY and ALPACA_API_SECRET"):
        AlpacaBackfillSource(Settings(_env_file=None), T0, T0 + HOUR)


# --- backfill --------------------------------------------------------------------------------------------------


def border_articles() -> tuple[list[dict], set[int]]:
    """Articles across [T0, T0+3h) split in 3 slices, with some exactly on and next to the slice borders."""
    inside = [
        T0,
        T0 + HOUR - US,
        T0 + HOUR,
        T0 + HOUR + US,
        T0 + 2 * HOUR - timedelta(seconds=30),
        T0 + 2 * HOUR,
        T0 + 3 * HOUR - US,
    ]
    inside += [T0 + timedelta(minutes=7 * i + 3) for i in range(25)]
    outside = [T0 - US, T0 + 3 * HOUR, T0 + 3 * HOUR + timedelta(seconds=1)]
    articles = [make_article(i, ts) for i, ts in enumerate(inside + outside, start=1)]
    return articles, set(range(1, len(inside) + 1))


def test_backfill_across_slices_returns_every_article_once_including_borders(fake):
    articles, expected = border_articles()
    fake.add_articles(*articles)

    out = run_backfill(AlpacaBackfillSource(settings_for(fake), T0, T0 + 3 * HOUR, None, slices=3))

    counts = Counter(ids(out))
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert all(r.origin == "alpaca-rest" for r in out)
    assert sum(1 for q in fake.rest_requests if q.get("page_token")) >= 9  # it really paged
    assert all(
        q["limit"] == "3" and q["sort"] == "asc" and q["include_content"].lower() == "true" for q in fake.rest_requests
    )
    article = NewsArticle.model_validate(next(r.payload for r in out if r.payload["id"] == 3))  # type: ignore[index]
    assert article.created_at == T0 + HOUR and article.content.startswith("<p>Body")


def test_backfill_symbols_filter(fake):
    fake.add_articles(
        *(
            make_article(i, T0 + i * timedelta(minutes=1), symbols=[("AAPL", "MSFT", "TSLA")[i % 3]])
            for i in range(1, 31)
        )
    )

    out = run_backfill(AlpacaBackfillSource(settings_for(fake), T0, T0 + HOUR, [" msft", "TSLA"], slices=2))

    assert sorted(ids(out)) == [i for i in range(1, 31) if i % 3 in (1, 2)]
    assert all(set(r.payload["symbols"]) & {"MSFT", "TSLA"} for r in out)  # type: ignore[index]


def test_wrong_keys_give_a_clear_error_without_the_secrets(fake):
    settings = settings_for(fake, alpaca_api_key="WRONG-key-id-123", alpaca_api_secret="WRONG-secret-456")
    source = AlpacaBackfillSource(settings, T0, T0 + HOUR)
    part = source.build_part("in", source.list_parts()[0], None)

    with pytest.raises(AlpacaAuthError, match="rejected the API credentials") as err:
        part.next_batch()

    shown = "".join(traceback.format_exception(err.value)) + repr(source) + repr(part)
    assert "WRONG-key-id-123" not in shown and "WRONG-secret-456" not in shown
    assert len(fake.rest_requests) == 1  # rejected credentials are not retried


def test_transient_server_errors_are_retried_with_backoff(fake):
    fake.add_articles(*(make_article(i, T0 + i * timedelta(minutes=1)) for i in range(1, 11)))
    fake.fail_next(3)

    out = run_backfill(AlpacaBackfillSource(settings_for(fake), T0, T0 + HOUR, slices=1, retry_base_s=0.01))

    assert sorted(ids(out)) == list(range(1, 11))
    assert len(fake.rest_requests) == 3 + 4  # three failures, then four pages of three


def test_persistent_server_errors_fail_after_a_bounded_number_of_retries(fake):
    fake.fail_next(10)
    source = AlpacaBackfillSource(settings_for(fake), T0, T0 + HOUR, retry_attempts=3, retry_base_s=0.01)
    part = source.build_part("in", source.list_parts()[0], None)

    with pytest.raises(AlpacaRequestError, match="3 attempts.*HTTP 500"):
        part.next_batch()
    assert len(fake.rest_requests) == 3


def test_resumed_partition_continues_after_the_last_emitted_page(fake):
    fake.add_articles(*(make_article(i, T0 + i * timedelta(minutes=1)) for i in range(1, 12)))
    source = AlpacaBackfillSource(settings_for(fake), T0, T0 + HOUR)
    [key] = source.list_parts()

    first = source.build_part("in", key, None)
    emitted = first.next_batch() + first.next_batch()
    state = pickle.loads(pickle.dumps(first.snapshot()))
    first.close()

    resumed = source.build_part("in", key, state)
    while True:
        try:
            emitted += resumed.next_batch()
        except StopIteration:
            break

    assert ids(emitted) == list(range(1, 12))
    finished = source.build_part("in", key, resumed.snapshot())
    requests_before = len(fake.rest_requests)
    with pytest.raises(StopIteration):
        finished.next_batch()
    assert len(fake.rest_requests) == requests_before


# --- live stream -----------------------------------------------------------------------------------------------


def now_article(article_id: int, **kw: object) -> dict:
    return make_article(article_id, datetime.now(UTC), **kw)


def drain(
    part, until: Callable[[list[RawRecord]], bool], got: list[RawRecord] | None = None, timeout: float = 10.0
) -> list[RawRecord]:
    got = [] if got is None else got
    deadline = time.monotonic() + timeout
    while not until(got):
        assert time.monotonic() < deadline, f"timed out with {ids(got)}"
        got.extend(part.next_batch())
        time.sleep(0.01)
    return got


def settle(part, got: list[RawRecord], seconds: float = 0.3) -> list[RawRecord]:
    """Keep polling briefly so a duplicate that would arrive late is caught."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got.extend(part.next_batch())
        time.sleep(0.01)
    return got


def live(part, fake) -> None:
    """Wait until the part has handled the server's first subscription ack, and the clock is past the ack's time.

    A fresh stream's watermark starts at that time; news stamped before it does not move the watermark. The ack can
    reach the client after the test stamped an article (seen on a loaded machine), so articles are stamped after it.
    """
    fake.wait_until(lambda: fake.subscriptions >= 1)
    drain(part, lambda _: part.snapshot().updated_at is not None)
    while datetime.now(UTC) <= part.snapshot().updated_at:
        time.sleep(0.001)


@pytest.fixture
def stream_part(fake):
    parts = []

    def build(
        resume: StreamWatermark | None = None, symbols=None, retry_base_s=0.01, min_backoff_s=0.05, **settings_overrides
    ):
        source = AlpacaStreamSource(
            settings_for(fake, **settings_overrides),
            symbols,
            reconnect_min_backoff_s=min_backoff_s,
            retry_base_s=retry_base_s,
        )
        part = source.build_part("in", source.list_parts()[0], resume)
        parts.append(part)
        return part

    yield build
    for part in parts:
        part.close()


def test_stream_delivers_published_news_without_blocking(fake, stream_part):
    part = stream_part()
    live(part, fake)
    started = time.monotonic()
    assert part.next_batch() == []  # nothing yet: returns at once
    assert time.monotonic() - started < 0.05
    assert part.next_awake() is not None

    fake.publish(now_article(1))
    fake.publish(now_article(2, symbols=["MSFT"]))
    got = drain(part, lambda got: len(got) >= 2)

    assert ids(got) == [1, 2] and {r.origin for r in got} == {"alpaca-stream"}
    assert NewsArticle.model_validate(got[1].payload).symbols == ("MSFT",)
    assert part.snapshot().ids == frozenset({"2"})


def test_article_matching_two_subscribed_symbols_is_emitted_once(fake, stream_part):
    part = stream_part(symbols=["AAPL", "MSFT"])
    live(part, fake)
    fake.publish(now_article(1, symbols=["AAPL", "MSFT"]))  # alpaca-py calls the handler once per symbol
    fake.publish(now_article(2, symbols=["TSLA"]))  # not subscribed
    fake.publish(now_article(3, symbols=["MSFT"]))

    got = settle(part, drain(part, lambda got: 3 in ids(got)))
    assert ids(got) == [1, 3]


def test_stream_reconnects_and_backfills_the_outage_exactly_once(fake, stream_part):
    part = stream_part()
    live(part, fake)
    fake.publish(now_article(1))
    got = drain(part, lambda got: len(got) == 1)

    with fake.outage():  # clients dropped, reconnects refused: news only reaches the REST store
        fake.publish(now_article(2))
        fake.publish(now_article(3))
        time.sleep(0.15)
    fake.wait_until(lambda: fake.subscriptions >= 2)
    drain(part, lambda got: {2, 3} <= set(ids(got)), got)
    fake.publish(fake.stored(3))  # re-sent live after it was backfilled
    fake.publish(now_article(4))

    settle(part, drain(part, lambda got: 4 in ids(got), got))
    assert Counter(ids(got)) == Counter([1, 2, 3, 4])
    assert {r.origin for r in got if r.payload["id"] in (2, 3)} == {"alpaca-rest"}  # type: ignore[index]
    assert fake.connections >= 2
    # The gap backfill starts the catch-up overlap before the last event seen (REST filters on created_at only).
    overlap = timedelta(seconds=Settings.model_fields["stream_catchup_overlap_s"].default)
    assert [parse_ts(q["start"]) for q in fake.rest_requests] == [version_of(got[0].payload)[1] - overlap]  # type: ignore[arg-type]


def test_outage_with_updates_and_late_stamped_news_loses_nothing_and_duplicates_nothing(fake, stream_part):
    """Published while the socket is down: new versions of articles seen before, and news created before the last
    event seen (stamped 20 s before publication). A catch-up from `created_at >= last updated_at` got none of them."""
    part = stream_part()
    live(part, fake)
    for i in range(1, 6):
        fake.publish(now_article(i))
    got = drain(part, lambda got: len(got) == 5)

    with fake.outage():
        at = datetime.now(UTC)
        for i in range(1, 6):
            fake.publish(fake.updated(i, at, headline=f"Headline {i}, updated"))
        for i in range(6, 11):
            fake.publish(make_article(i, at - timedelta(seconds=20)))
        time.sleep(0.15)
    newest = {version_of(fake.stored(i)) for i in range(1, 11)}
    fake.wait_until(lambda: fake.subscriptions >= 2)
    drain(part, lambda got: newest <= set(versions(got)), got)
    fake.publish(fake.stored(2))  # the same versions again, live, after the backfill had them
    fake.publish(fake.stored(7))
    fake.publish(now_article(11))

    settle(part, drain(part, lambda got: 11 in ids(got), got))
    assert max(Counter(versions(got)).values()) == 1  # no version twice
    assert len(got) == 5 + 10 + 1
    assert {r.payload["headline"] for r in got[5:] if r.payload["id"] <= 5} == {  # type: ignore[index]
        f"Headline {i}, updated" for i in range(1, 6)
    }


def test_dedup_remembers_every_version_a_gap_backfill_can_return_again(fake, stream_part, monkeypatch):
    monkeypatch.setattr(alpaca_stream, "DEDUP_PRUNE_AT", 0)  # prune the dedup keys after every batch
    part = stream_part()
    live(part, fake)
    fake.publish(make_article(1, datetime.now(UTC) - 2 * HOUR))  # stamped 2 h before it went out
    fake.publish(now_article(2))
    got = drain(part, lambda got: len(got) == 2)

    with fake.outage():  # nothing new: the backfill only returns what was already emitted
        time.sleep(0.15)
    fake.wait_until(lambda: fake.subscriptions >= 2)
    drain(part, lambda _: not part._gaps and len(fake.rest_requests) >= 1, got)
    settle(part, got)
    assert ids(got) == [1, 2]


def test_snapshot_holds_back_the_watermark_until_the_gap_is_filled(fake, stream_part):
    part = stream_part(retry_base_s=0.5)
    live(part, fake)
    fake.publish(now_article(1))
    got = drain(part, lambda got: len(got) == 1)
    before_outage = part.snapshot()

    with fake.outage():
        fake.publish(now_article(2))
        fake.fail_next(1, status=503)  # holds the gap backfill back for one 0.5 s retry
    fake.wait_until(lambda: fake.subscriptions >= 2)
    drain(part, lambda _: len(fake.rest_requests) >= 1, got)
    fake.publish(now_article(3))
    drain(part, lambda got: 3 in ids(got), got)
    assert 2 not in ids(got)
    assert part.snapshot() == before_outage  # live news moved on, but the gap is still open

    drain(part, lambda got: 2 in ids(got), got)
    settle(part, got, 0.1)
    assert Counter(ids(got)) == Counter([1, 2, 3])
    assert part.snapshot().ids == frozenset({"3"})


def test_resumed_stream_backfills_from_the_catchup_overlap_before_the_snapshot_watermark(fake, stream_part):
    mark = datetime.now(UTC) - timedelta(minutes=1)
    fake.add_articles(
        make_article(10, mark - timedelta(minutes=5)),  # before watermark - overlap: not read again
        make_article(14, mark - timedelta(seconds=30)),  # created before the watermark, published after the snapshot
        make_article(11, mark),  # at the watermark, already emitted before the snapshot
        make_article(12, mark),  # at the watermark, not emitted yet
        make_article(13, mark + timedelta(seconds=1)),
    )

    part = stream_part(
        resume=pickle.loads(pickle.dumps(StreamWatermark(mark, frozenset({"11"})))), stream_catchup_overlap_s=60
    )
    got = settle(part, drain(part, lambda got: len(got) >= 3))

    assert sorted(ids(got)) == [12, 13, 14]
    assert parse_ts(fake.rest_requests[0]["start"]) == mark - timedelta(seconds=60)
    assert part.snapshot().updated_at == mark + timedelta(seconds=1)


def test_stream_auth_failure_stops_with_a_clear_error(fake, stream_part):
    part = stream_part(alpaca_api_secret="WRONG-secret-789")

    with pytest.raises(AlpacaAuthError, match="stream rejected the API credentials") as err:
        drain(part, lambda _: False, timeout=5)

    assert "WRONG-secret-789" not in "".join(traceback.format_exception(err.value))
    time.sleep(0.2)
    assert fake.auth_attempts == 1  # no retry loop against a server that said no


@pytest.mark.parametrize("waiting_on", ["reconnect backoff", "opening handshake", "gap backfill response"])
def test_close_is_prompt_whatever_the_stream_is_waiting_on(fake, stream_part, waiting_on):
    """Ctrl-C reaches close() (Bytewax drops the partition); a slow close makes `ingest stream` hang on exit."""
    part = stream_part(min_backoff_s=30, stream_max_backoff_s=30)  # a reconnect waits 15-30 s
    live(part, fake)
    fake.publish(now_article(1))
    drain(part, lambda got: len(got) == 1)
    before = part.snapshot()
    with contextlib.ExitStack() as stack:
        if waiting_on == "reconnect backoff":
            stack.enter_context(fake.outage())
            fake.wait_until(lambda: fake.open_connections == 0)
            time.sleep(0.2)
        elif waiting_on == "opening handshake":
            part._stream._reconnect_min_backoff = part._stream._reconnect_max_backoff = 0.05
            stack.enter_context(fake.handshake_stall())
            fake.wait_until(lambda: fake.stalled_handshakes >= 1)
        else:
            stack.enter_context(fake.rest_stall())
            part._stream._reconnect_min_backoff = 0.05
            fake.drop_connections()
            drain(part, lambda _: fake.rest_stalled >= 1)  # the reconnect, seen by next_batch, starts the backfill
        part.next_batch()
        started = time.monotonic()
        part.close()
        took = time.monotonic() - started

    assert took < 2, f"close() took {took:.1f} s while waiting on the {waiting_on}"
    assert not part._thread.is_alive()
    assert part.snapshot() == before  # the resume state still points before anything not delivered


def test_close_stops_the_stream_thread_quickly(fake, stream_part):
    part = stream_part()
    live(part, fake)
    started = time.monotonic()
    part.close()
    assert time.monotonic() - started < 2
    assert not part._thread.is_alive()
    fake.wait_until(lambda: fake.open_connections == 0)
