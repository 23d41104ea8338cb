"""Websocket drops against the live-news source: what is lost, what is delivered twice.

    python benchmarks/stream_faults.py [--drops 10] [--updates 5] [--late 5] [--live 5] [--outage-s 0.3]

Runs the stream source (`AlpacaStreamSource`, real alpaca-py clients) against the fake Alpaca in tests/fake_alpaca.py.
Before each drop `live` new articles go out on the websocket; then the server drops every client and refuses
reconnects for `outage_s`, and publishes, to its REST store only, `updates` new versions of articles delivered
before and `late` new articles whose created_at is `late_by_s` before publication. After the last reconnect:
lost = newest versions of all articles never delivered; duplicated = deliveries of a version beyond its first.
It measures the source alone (no embedding, no store): the store drops same-version rewrites on top of this.
Prints one JSON object; `run_stream_faults()` returns it (benchmarks/faults.py calls it).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def run_stream_faults(
    drops: int = 10,
    updates: int = 5,
    late: int = 5,
    live: int = 5,
    outage_s: float = 0.3,
    late_by_s: float = 20.0,
    wait_s: float = 15.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Run `drops` outages with updates and late-stamped news published during each; count lost and duplicated."""
    from finassist.config import Settings
    from finassist.feature.sources.alpaca_stream import AlpacaStreamSource

    from fake_alpaca import FakeAlpaca, make_article, parse_ts

    rng = random.Random(seed)
    delivered: Counter[tuple[int, datetime]] = Counter()
    started = time.monotonic()
    with FakeAlpaca() as fake:
        settings = Settings(
            _env_file=None,
            alpaca_api_key=fake.key,
            alpaca_api_secret=fake.secret,
            alpaca_data_url=fake.rest_url,
            alpaca_stream_url=fake.stream_url,
            stream_max_backoff_s=0.5,
        )
        source = AlpacaStreamSource(settings, reconnect_min_backoff_s=0.05, retry_base_s=0.05)
        part = source.build_part("in", source.list_parts()[0], None)

        def poll() -> None:
            for record in part.next_batch():
                delivered[(record.payload["id"], parse_ts(record.payload["updated_at"]))] += 1  # type: ignore[index]
            time.sleep(0.01)

        def deliver_until(expected: set[tuple[int, datetime]]) -> bool:
            deadline = time.monotonic() + wait_s
            while not expected <= delivered.keys():
                if time.monotonic() > deadline:
                    return False
                poll()
            return True

        def version(article: dict[str, Any]) -> tuple[int, datetime]:
            return article["id"], parse_ts(article["updated_at"])

        timeouts = 0
        next_id = 1
        try:
            fake.wait_until(lambda: fake.subscriptions >= 1, timeout=wait_s)
            for _ in range(drops):
                fresh = [make_article(next_id + i, datetime.now(UTC)) for i in range(live)]
                next_id += live
                for article in fresh:
                    fake.publish(article)
                timeouts += not deliver_until({version(a) for a in fresh})
                known = sorted({aid for aid, _ in delivered})
                subscribed = fake.subscriptions
                with fake.outage():
                    at = datetime.now(UTC)
                    updated = rng.sample(known, min(updates, len(known)))
                    missed = [fake.updated(aid, at, headline=f"Update of {aid}") for aid in updated]
                    missed += [make_article(next_id + i, at - timedelta(seconds=late_by_s)) for i in range(late)]
                    next_id += late
                    for article in missed:
                        fake.publish(article)
                    time.sleep(outage_s)
                fake.wait_until(lambda n=subscribed: fake.subscriptions > n, timeout=wait_s)
                timeouts += not deliver_until({version(a) for a in missed})
            end = time.monotonic() + 0.5  # a late duplicate still counts
            while time.monotonic() < end:
                poll()
        finally:
            part.close()
        newest = {version(fake.stored(aid)) for aid in range(1, next_id)}
    return {
        "date": date.today().isoformat(),
        "drops": drops,
        "articles": next_id - 1,
        "published_during_outages": drops * (updates + late),
        "versions_delivered": len(delivered),
        "lost": len(newest - delivered.keys()),
        "duplicated": sum(n - 1 for n in delivered.values()),
        "waits_timed_out": timeouts,
        "catchup_overlap_s": settings.stream_catchup_overlap_s,
        "seconds": round(time.monotonic() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--updates", type=int, default=5, help="updates to delivered articles per outage")
    parser.add_argument("--late", type=int, default=5, help="late-stamped new articles per outage")
    parser.add_argument("--live", type=int, default=5, help="live articles before each drop")
    parser.add_argument("--outage-s", type=float, default=0.3)
    parser.add_argument("--late-by-s", type=float, default=20.0)
    args = parser.parse_args()
    result = run_stream_faults(args.drops, args.updates, args.late, args.live, args.outage_s, args.late_by_s)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
