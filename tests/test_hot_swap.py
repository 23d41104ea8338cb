"""Serving follows the registry's `@champion` (issue 13 §2): the API loads a newly promoted adapter beside the served
one, requests under way finish on the version they started with, new ones use the new version, and the old model
is closed once its last answer ends. Real registry (MLflow on sqlite), real adapters, real models, a real server."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import httpx
import mlflow
import pytest

from finassist.cli.loop import served_quality
from finassist.config import Settings
from finassist.inference.api import Services, create_app
from finassist.registry import CHAMPION, ModelRegistry
from finassist.training.promotion import promote
from loras import random_lora

from api_server import ApiServer
from conftest import ingest_rows
from newsgen import brookward_dividend

pytestmark = pytest.mark.slow

NAME = "financial-assistant"
CHAMPION_URI = f"models:/{NAME}@champion"  # the default outside tests (conftest serves the base model)
QUESTION = {"question": "How much did Brookward cut its dividend?", "max_tokens": 6}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two different untrained adapters (random LoRA B), each logged as a training run's `adapter` artifact."""
    root = tmp_path_factory.mktemp("adapters")
    return [random_lora(root / f"lora{seed}", seed=seed) for seed in (1, 2)]


@pytest.fixture
def registry(home, adapters, monkeypatch):
    """Versions 1 and 2 of the registered model, version 1 the champion; plus news for the question."""
    settings = Settings(home=home)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI: undone after the test, or later tests' subprocesses
    # would inherit this test's (deleted) database
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    registry = ModelRegistry(settings)
    for path in adapters:
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(path), "adapter")
        registry.register(NAME, run.info.run_id)
    registry.set_alias(NAME, CHAMPION, 1)
    ingest_rows(settings, [brookward_dividend(1)], home.parent / "news.jsonl")
    return registry


def label(version: int) -> str:
    return f"{NAME}/{version}"


@pytest.mark.parametrize("backend", ["transformers", "llamacpp"])
def test_an_answer_under_way_finishes_on_its_version_and_the_old_model_is_then_closed(home, registry, backend):
    settings = Settings(home=home, tracing=False, champion_poll_s=0, llm_backend=backend, llm_context_tokens=4096,
                        llm_adapter=CHAMPION_URI)
    services = Services(settings)
    services.load()
    assert services.error is None, services.error
    try:
        assert services.llm.info.adapter == label(1)
        leased = services.lease()  # an answer under way (taken the way the answer routes take it)
        old_llm = weakref.ref(leased.llm)
        registry.set_alias(NAME, CHAMPION, 2)

        check = services.watcher.check()
        assert (check.changed, check.previous, check.adapter) == (True, label(1), label(2))
        assert services.in_use() == [label(2), label(1)]  # both loaded while the old one finishes
        assert services.watcher.check().changed is False  # nothing moved since
        from finassist.inference.chain import AskInput

        assert leased.ask(AskInput(**QUESTION)).adapter == label(1)  # the old model still answers its request
        assert services.require_chain().ask(AskInput(**QUESTION)).adapter == label(2)
        services.release(leased)
        assert services.in_use() == [label(2)]
        del leased
        gc.collect()
        assert old_llm() is None, gc.get_referrers(old_llm())  # nothing keeps the swapped-out model alive
    finally:
        services.llm.close()


def test_a_bad_new_version_leaves_the_served_one_serving(home, registry, adapters, tmp_path):
    """A version whose adapter is for another base model fails to load: the old version keeps answering, the
    failure is named by the reload call and /readyz, and a later good promotion is followed."""
    import json

    from fastapi.testclient import TestClient

    bad = tmp_path / "bad"
    bad.mkdir()
    for f in adapters[0].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "finassist.json").write_text(json.dumps({"prompt_version": "v1", "base_model": "Other-7B"}))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(bad), "adapter")
    version, _ = registry.register(NAME, run.info.run_id)
    settings = Settings(home=home, tracing=False, champion_poll_s=0, llm_adapter=CHAMPION_URI)
    services = Services(settings)
    services.load()
    try:
        with TestClient(create_app(settings, services), client=("127.0.0.1", 50000)) as client:
            registry.set_alias(NAME, CHAMPION, version.version)
            r = client.post("/v1/admin/reload")
            assert r.status_code == 500 and r.json()["error"]["type"] == "reload_failed", r.text
            assert "Other-7B" in r.json()["error"]["message"] and label(1) in r.json()["error"]["message"]
            ready = client.get("/readyz").json()
            assert ready["adapter"] == label(1) and "Other-7B" in ready["champion"]["error"]
            assert client.post("/v1/ask", json=QUESTION).json()["adapter"] == label(1)
            registry.set_alias(NAME, CHAMPION, 2)
            assert client.post("/v1/admin/reload").json()["adapter"] == label(2)
            assert client.get("/readyz").json()["champion"]["error"] is None
    finally:
        services.llm.close()


def test_steady_requests_during_a_promotion_and_a_rollback_all_succeed(home, registry):
    """Two clients ask without pause; the champion moves 1 -> 2 (noticed by polling) and back (`model promote 1
    --force`, then POST /v1/admin/reload): every request succeeds, and answers name v1, then v2, then v1."""
    settings = Settings(home=home, tracing=False, champion_poll_s=0.3, api_max_queue=16, llm_adapter=CHAMPION_URI)
    app = create_app(settings)
    results: list[tuple[float, int, str | None]] = []  # (finished at, status, adapter)
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while not stop.is_set():
                r = http.post("/v1/ask", json=QUESTION)
                results.append((time.monotonic(), r.status_code, r.json().get("adapter")))

    def wait_for(adapter: str, after: float, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(at > after and status == 200 and a == adapter for at, status, a in results):
                return
            time.sleep(0.1)
        pytest.fail(f"no answer from {adapter} after the switch: {results[-5:]}")

    with ApiServer(app) as server:
        threads = [threading.Thread(target=client, args=(server.url,)) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            wait_for(label(1), 0)
            promoted_at = time.monotonic()
            promote(settings, 2, force=True)  # the rollback-capable path `finassist model promote N --force` uses
            wait_for(label(2), promoted_at)
            rolled_back_at = time.monotonic()
            promote(settings, 1, force=True)
            reload = httpx.post(f"{server.url}/v1/admin/reload", timeout=120).json()
            assert reload["adapter"] == label(1)
            wait_for(label(1), rolled_back_at)
            time.sleep(1)  # a few more answers on the rolled-back version
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        ready = httpx.get(f"{server.url}/readyz").json()
        metrics = httpx.get(f"{server.url}/metrics").text
        quality = served_quality(f"{server.url}/metrics", settings)  # what `loop --min-groundedness` reads
    assert [r for r in results if r[1] != 200] == []
    order = [a for _, _, a in sorted(results)]
    phases = [a for i, a in enumerate(order) if i == 0 or a != order[i - 1]]
    assert phases[0] == label(1) and label(2) in phases and phases[-1] == label(1), phases
    assert ready["champion"]["in_use"] == [label(1)]  # memory back to one model
    assert 'finassist_champion_swaps_total{outcome="swapped"} 2.0' in metrics
    assert quality is not None and 0 < quality.answers <= 100 and 0 <= quality.groundedness <= 1


def test_admin_reload_needs_the_api_key_or_a_client_on_this_machine(home):
    from fastapi.testclient import TestClient

    open_app = create_app(Settings(home=home))  # no key: the rest of the API is open, admin only from loopback
    r = TestClient(open_app, client=("10.1.2.3", 40000)).post("/v1/admin/reload")
    assert r.status_code == 403 and "FINASSIST_API_KEY" in r.json()["error"]["message"]
    r = TestClient(open_app, client=("127.0.0.1", 40000)).post("/v1/admin/reload")
    assert r.status_code == 503 and r.json()["error"]["type"] == "not_ready"  # allowed; nothing loaded yet

    keyed = create_app(Settings(home=home, api_key="k" * 24))
    assert TestClient(keyed, client=("10.1.2.3", 40000)).post("/v1/admin/reload").status_code == 401
    remote = TestClient(keyed, client=("10.1.2.3", 40000))
    r = remote.post("/v1/admin/reload", headers={"Authorization": "Bearer " + "k" * 24})
    assert r.status_code == 503
