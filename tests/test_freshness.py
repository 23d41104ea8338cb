"""Freshness: with the streaming feature pipeline running inside the API process (the embedded store allows one
process), an article published on the (fake) Alpaca websocket is retrievable through /v1/retrieve within 5 s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from api_server import free_port, wait_ready
from fake_alpaca import FakeAlpaca, make_article

pytestmark = pytest.mark.slow

FRESHNESS_S = 5.0


@pytest.fixture
def served(home, tmp_path):
    """`finassist serve --ingest-stream` in a subprocess against a fake Alpaca; killed at teardown."""
    with FakeAlpaca() as fake:
        port = free_port()
        env = {
            **os.environ,
            "ALPACA_API_KEY": fake.key,
            "ALPACA_API_SECRET": fake.secret,
            "FINASSIST_ALPACA_DATA_URL": fake.rest_url,
            "FINASSIST_ALPACA_STREAM_URL": fake.stream_url,
            "FINASSIST_TRACING": "false",
        }
        log = (tmp_path / "serve.log").open("w")  # a file, not a pipe: nobody reads a pipe, and a full one blocks
        proc = subprocess.Popen(
            [sys.executable, "-m", "finassist.cli", "serve", "--port", str(port), "--ingest-stream"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_ready(url, alive=lambda: proc.poll() is None)
                fake.wait_until(lambda: fake.subscriptions > 0, timeout=120)
            except Exception:
                raise AssertionError((tmp_path / "serve.log").read_text()[-4000:]) from None
            yield fake, url
        finally:
            log.close()
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_published_article_is_retrievable_through_the_api_within_5_seconds(served):
    fake, url = served
    topics = ["lithium refinery in Nevada", "stablecoin reserve audit", "drone delivery permit"]
    for i, topic in enumerate(topics):
        headline = f"Zorbex Corp Announces A {topic.title()}"
        published = time.monotonic()
        fake.publish(
            make_article(
                9_000 + i,
                datetime.now(UTC),
                symbols=["ZRBX"],
                headline=headline,
                content=f"<p>Zorbex Corp announced a {topic} on Monday.</p>",
            )
        )
        found_after = None
        while time.monotonic() - published < FRESHNESS_S + 10:  # look a bit longer, to report how late it was
            hits = httpx.get(f"{url}/v1/retrieve", params={"q": headline, "k": 1}, timeout=10).json()["hits"]
            if hits and hits[0]["article_id"] == str(9_000 + i):
                found_after = time.monotonic() - published
                break
            time.sleep(0.1)
        assert found_after is not None, f"article {i} never became retrievable"
        assert found_after <= FRESHNESS_S, f"article {i} took {found_after:.1f} s to become retrievable"
