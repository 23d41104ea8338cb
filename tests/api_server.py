"""The real API on 127.0.0.1 in a background thread (uvicorn), for clients that need a socket: the openai SDK,
LangChain's ChatOpenAI, a browser."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """uvicorn configured as `finassist serve` runs it (h11, header limits and timeouts from the app's settings)."""

    def __init__(self, app, wait_ready: bool = True):
        from finassist.inference.api import uvicorn_options

        self.port = free_port()
        options = uvicorn_options(app.state.settings)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    **options))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.wait_ready = wait_ready

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        if self.wait_ready:
            wait_ready(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_ready(url: str, timeout: float = 180, alive: Callable[[], bool] = lambda: True) -> dict:
    """Poll /readyz until the model and store are loaded (`alive`: stop early when the server process died)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline and alive():
        try:
            r = httpx.get(f"{url}/readyz", timeout=5)
            last = r.json()
            if r.status_code == 200:
                return last
            if last.get("status") == "failed":
                raise RuntimeError(f"the API failed to load: {last}")
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s: {last}")
