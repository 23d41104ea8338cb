"""Production mode: an MLflow tracking server backed by PostgreSQL with a proxied artifact store. The real commands
train → evaluate → register and promote against it, then an API on another machine's home (nothing local but the
base model) loads `@champion` from the server and traces its requests there."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from postgres_server import PostgresServer, bindir

from api_server import free_port
from conftest import finassist, qa_example, write_dataset

pytestmark = pytest.mark.slow

if bindir() is None:
    pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; `make install` does it when root)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("production")
    pg = PostgresServer().start()
    store = pg.create_database("mlflow")
    port = free_port()
    log = (root / "mlflow.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store, "--artifacts-destination",
         str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (root / "mlflow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the MLflow server did not become healthy"
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        yield url, pg, root
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        pg.stop()


def test_train_register_promote_and_serve_champion_through_a_postgres_backed_server(mlflow_server, tmp_path):
    from fastapi.testclient import TestClient
    from mlflow import MlflowClient

    from finassist.config import Settings
    from finassist.inference.api import Services, create_app

    url, pg, root = mlflow_server
    trainer_home, server_home = tmp_path / "trainer", tmp_path / "server"
    trainer = Settings(home=trainer_home, mlflow_uri=url)
    write_dataset(trainer, "0ddba11c0ffe",
                  [qa_example(i, f"Copperdeep raised its dividend by {i}% [1].") for i in range(1, 11)])
    env = {"FINASSIST_HOME": str(trainer_home), "FINASSIST_MLFLOW_URI": url, "FINASSIST_COMET_MODE": "off"}
    run = finassist("train", "--set", "max_steps=2", "--set", "lora_r=4", "--set", "lora_alpha=8", "--json", env=env)
    assert run["artifact_uri"].startswith("mlflow-artifacts:")  # the server stores the adapter, not this machine
    report = finassist("evaluate", "--limit", "2", "--max-tokens", "4", "--json", env=env)
    assert report["run_id"] == run["run_id"] and report["tuned"]["perplexity"] > 1
    registered = finassist("model", "register", "--promote", "--json", env=env)
    assert registered["registered"]["version"] == 1 and registered["promotion"]["promoted"]

    # The rows live in PostgreSQL, the adapter files in the server's artifact store.
    assert pg.query("mlflow", "select name, version from model_versions") == "financial-assistant|1"
    assert pg.query("mlflow", "select alias, version from registered_model_aliases") == "champion|1"
    assert list((root / "artifacts").rglob("adapter/adapter_model.safetensors"))

    # Another machine: no trainer home, only the server's address. The API loads the champion from the registry.
    serving = Settings(home=server_home, mlflow_uri=url, llm_adapter=None)
    services = Services(serving)
    services.load()
    try:
        assert services.error is None, services.error
        assert services.llm.info.adapter == "financial-assistant/1"
        assert (server_home / "registry" / "financial-assistant" / "1" / "adapter_config.json").is_file()
        with TestClient(create_app(serving, services)) as client:
            deadline = time.monotonic() + 60
            while services.tracer is None and time.monotonic() < deadline:  # tracing starts after readiness
                time.sleep(0.2)
            answer = client.post("/v1/ask", json={"question": "What did Copperdeep do?", "max_tokens": 4}).json()
            assert answer["adapter"] == "financial-assistant/1"
    finally:
        services.llm.close()
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    client = MlflowClient(url)
    serving_experiment = client.get_experiment_by_name("finassist-serving")
    traces = client.search_traces(locations=[serving_experiment.experiment_id])
    assert len(traces) == 1 and traces[0].info.state.value == "OK"
