"""The API under abuse, on a real uvicorn server on 127.0.0.1 configured as `finassist serve` runs it: oversized
headers, slowloris, oversized chunked bodies, clients that leave while queued or mid-answer, timeouts after the
first token, open operational endpoints, the chat page's security headers, a dead in-process pipeline.

Generation is a fake OpenAI-compatible server (tests/fake_openai.py) streaming one word per `chunk_delay_s`; the
probes are benchmarks/api_abuse.py's, raw sockets where the behaviour is below HTTP. Timeouts are set short
(1 s) so the slowloris cases end quickly; no assertion is about speed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from finassist.config import Settings
from finassist.inference.api import Services, create_app
from finassist.inference.chain import RunRecord

from api_server import ApiServer
from fake_openai import FakeOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import api_abuse as probe

KEY = "abuse-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPLY = " ".join(f"word{i}" for i in range(60))
ASK = 'endpoint="/v1/ask",status="{}"'


@dataclass
class RecordingServices(Services):
    """Services that keep every finished run record (what the chain saw, and how it ended)."""

    runs: list[RunRecord] = field(default_factory=list)

    def _finished(self, run: RunRecord) -> None:
        super()._finished(run)
        self.runs.append(run)


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(reply=REPLY) as fake:
        yield fake


@pytest.fixture(scope="module")
def abuse_settings(tmp_path_factory, fake) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("abuse") / "home", api_key=KEY, tracing=False,
        llm_backend="openai", llm_base_url=fake.url, llm_model="fake-model", llm_adapter="",
        api_max_concurrency=1, api_max_queue=2, api_header_timeout_s=1, api_body_timeout_s=1, api_keep_alive_s=1,
        # The store is empty: with the answer checks on, "no news" is answered without the model, and these tests
        # are about how generations are admitted, stopped and counted.
        answer_checks=False,
    )


@pytest.fixture(scope="module")
def services(abuse_settings) -> RecordingServices:
    services = RecordingServices(abuse_settings)
    services.load()
    assert services.chain is not None, services.error
    return services


@pytest.fixture(scope="module")
def server(abuse_settings, services):
    with ApiServer(create_app(abuse_settings, services=services)) as server:
        yield server


@pytest.fixture
def slow_answers(fake):
    """60 words, one per 80 ms: an answer holds its generation slot for ~5 s (time to queue a second request)."""
    fake.chunk_delay_s = 0.08
    yield
    fake.chunk_delay_s = 0.0


def metric(server, name: str, labels: str = "") -> float:
    return probe.metric(server.url, name, KEY, labels)


def wait_until(condition, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def idle(server) -> bool:
    return metric(server, "finassist_generations_in_flight") == 0 and metric(server, "finassist_requests_queued") == 0


def next_run(services: RecordingServices, seen: int) -> RunRecord:
    wait_until(lambda: len(services.runs) > seen, what="the run record")
    return services.runs[seen]


# --- headers and bodies ---------------------------------------------------------------------------------------
def test_oversized_or_too_many_headers_get_431(server):
    before = metric(server, "finassist_requests_total", 'endpoint="unmatched",status="431"')
    assert probe.oversized_header(server.url, 1000) == 200
    assert probe.oversized_header(server.url, probe.MiB) == 431  # refused by h11 before it is buffered
    assert probe.oversized_header(server.url, 40_000) == 431  # over 32 KiB even when it comes in one read
    assert probe.many_headers(server.url, 150) == 431  # few bytes, too many headers
    assert probe.many_headers(server.url, 100_000) == 431
    assert metric(server, "finassist_requests_total", 'endpoint="unmatched",status="431"') == before + 4


def test_a_trickled_request_head_gets_408_and_an_idle_connection_is_closed(server):
    assert probe.slow_headers(server.url, interval_s=0.2, max_wait_s=15)["status"] == 408
    assert probe.idle_connection(server.url, max_wait_s=15)["closed"]


def test_a_trickled_body_gets_408(server):
    assert probe.slow_body(server.url, KEY, interval_s=0.2, max_wait_s=15)["status"] == 408


def test_a_chunked_body_over_the_limit_gets_413(server):
    assert probe.chunked_body(server.url, 2 * probe.MiB, KEY) == 413
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # and the server is fine


# --- clients that leave -----------------------------------------------------------------------------------------
def test_a_request_whose_client_leaves_while_queued_is_never_generated(server, services, fake, slow_answers):
    asked, gone = len(fake.chat_requests), metric(server, "finassist_requests_total", ASK.format(499))
    first: dict = {}

    def ask_first() -> None:
        first["r"] = httpx.post(f"{server.url}/v1/ask", json={"question": "First?"}, headers=AUTH, timeout=60)

    holder = threading.Thread(target=ask_first)
    holder.start()
    wait_until(lambda: metric(server, "finassist_generations_in_flight") == 1, what="the first answer started")
    with probe.connect(server.url) as sock:
        sock.sendall(probe.ask_bytes(server.url, KEY, "Second?"))
        wait_until(lambda: metric(server, "finassist_requests_queued") == 1, what="the second request queued")
    wait_until(lambda: metric(server, "finassist_requests_queued") == 0, what="the queue emptied")
    holder.join()
    assert first["r"].status_code == 200
    wait_until(lambda: idle(server), what="nothing left in flight")
    assert len(fake.chat_requests) == asked + 1  # the second question never reached the LLM
    assert metric(server, "finassist_requests_total", ASK.format(499)) == gone + 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_generation_whose_client_leaves_is_stopped_and_counted_as_499(server, services, fake, slow_answers,
                                                                         stream):
    seen, asked = len(services.runs), len(fake.chat_requests)
    gone = metric(server, "finassist_requests_total", ASK.format(499))
    with probe.connect(server.url) as sock:
        sock.sendall(probe.ask_bytes(server.url, KEY, "Leaving mid-answer?", stream=stream))
        if stream:
            sock.settimeout(30)
            received = b""
            while b"event: token" not in received:
                received += sock.recv(4096)
        else:
            wait_until(lambda: len(fake.chat_requests) == asked + 1, what="the generation began")
    run = next_run(services, seen)
    assert run.error == "client gone" and run.answer is None  # stopped, not generated to the end
    wait_until(lambda: idle(server), what="the slot freed")
    assert metric(server, "finassist_requests_total", ASK.format(499)) == gone + 1


def test_a_timeout_after_the_first_token_is_a_counted_504_without_a_traceback(abuse_settings, services, fake):
    settings = abuse_settings.model_copy(update={"generation_timeout_s": 0.6})
    timed = Services(settings, llm=services.llm)
    timed.load()
    fake.chunk_delay_s = 0.2  # the first words arrive, the rest is past the deadline
    logged: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = logged.append  # type: ignore[method-assign]
    try:
        with ApiServer(create_app(settings, services=timed)) as server:
            logging.getLogger("uvicorn.error").addHandler(handler)
            whole = httpx.post(f"{server.url}/v1/ask", json={"question": "Slow?"}, headers=AUTH, timeout=60)
            assert whole.status_code == 504 and whole.json()["error"]["type"] == "timeout"
            with httpx.stream("POST", f"{server.url}/v1/ask", json={"question": "Slow?", "stream": True},
                              headers=AUTH, timeout=60) as streamed:
                text = streamed.read().decode()
            assert "event: token" in text and "event: error" in text and '"code": 504' in text
            assert metric(server, "finassist_requests_total", ASK.format(504)) == 2
    finally:
        fake.chunk_delay_s = 0.0
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert not [r for r in logged if r.exc_info or "Exception in ASGI application" in r.getMessage()]


# --- exposure -------------------------------------------------------------------------------------------------------
def test_metrics_and_the_schema_need_the_key_and_the_docs_pages_are_off(server):
    assert probe.open_endpoints(server.url) == {
        "/metrics": 401, "/docs": 404, "/redoc": 404, "/openapi.json": 401, "/healthz": 200, "/readyz": 200,
    }
    assert httpx.get(f"{server.url}/metrics", headers=AUTH).status_code == 200
    assert "/v1/ask" in httpx.get(f"{server.url}/openapi.json", headers=AUTH).json()["paths"]


def test_docs_and_open_metrics_are_opt_in(abuse_settings):
    settings = abuse_settings.model_copy(update={"api_docs": True, "api_metrics_public": True})
    client = TestClient(create_app(settings, services=Services(settings)))
    assert [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json", "/metrics")] == [200] * 4
    assert client.get("/v1/models").status_code == 401


def test_the_chat_page_allows_only_its_own_script_and_style_and_no_framing(server):
    r = httpx.get(f"{server.url}/")
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    script = re.search(r"<script>(.*?)</script>", r.text, re.S).group(1)  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'"


# --- readiness with an in-process pipeline ---------------------------------------------------------------------
def test_readiness_fails_when_a_background_task_dies(abuse_settings, services):
    release, stop_steady = threading.Event(), threading.Event()

    def steady() -> None:
        stop_steady.wait(60)

    def doomed() -> None:
        release.wait(60)
        raise RuntimeError("ingest exploded")

    own = Services(abuse_settings, llm=services.llm)
    own.load()
    try:
        with ApiServer(create_app(abuse_settings, services=own, background=(steady, doomed))) as server:
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 200 and ready.json()["background"]["doomed"] == {"state": "running"}
            release.set()
            wait_until(lambda: httpx.get(f"{server.url}/readyz").status_code == 503, what="readiness lost")
            body = httpx.get(f"{server.url}/readyz").json()
            assert body["status"] == "degraded"
            assert body["error"] == "doomed stopped: RuntimeError: ingest exploded"
            health = httpx.get(f"{server.url}/healthz")
            assert health.status_code == 200 and health.json()["background"] == {"steady": "running",
                                                                                  "doomed": "failed"}
    finally:
        release.set()
        stop_steady.set()


def test_the_serve_pipeline_task_lets_its_failure_reach_the_api(abuse_settings, monkeypatch):
    import finassist.feature.flow as flow
    from finassist.cli.serve import _pipeline_in_background

    def broken(*args, **kwargs):
        raise RuntimeError("the store is locked")

    monkeypatch.setattr(flow, "run_flow", broken)
    with pytest.raises(RuntimeError, match="store is locked"):
        _pipeline_in_background(object(), abuse_settings, "job")()
