"""The API under abuse: oversized and numerous headers, slowloris (slow headers, slow body, idle connections), a
chunked oversized body, clients that leave while queued, open operational endpoints, the UI's security headers.

    python benchmarks/api_abuse.py http://127.0.0.1:8000 [--key KEY] [--pid SERVER_PID] [--wait 15]
                                   [--only headers,slowloris,body,queue,exposure,flood] [--flood-seconds 5]

Every probe is a plain function of the server's URL (raw sockets where the behaviour is below HTTP), returning a
dict of counts and statuses, so other benchmarks (benchmarks/faults.py) and tests can call them one by one. A
status of 0 means the server closed the connection without an answer; -1 that it said nothing within the wait.
Load stays small and bounded: a few connections, each with its own deadline. The last stdout line is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx

MiB = 1024 * 1024


# --- raw HTTP/1.1 over a socket --------------------------------------------------------------------------------
def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def connect(url: str, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(_address(url), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_status(sock: socket.socket, wait_s: float) -> int:
    """The status code of the server's answer; 0 when it closed (or reset) without one, -1 when silent for wait_s."""
    sock.settimeout(wait_s)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        return -1 if not data else _status_of(data)
    except OSError:  # reset by the server
        return _status_of(data)
    return _status_of(data)


def _status_of(data: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else 0


def send_all(sock: socket.socket, data: bytes, piece: int = 256 * 1024) -> bool:
    """Send `data`; False when the server closed the connection before taking all of it."""
    try:
        for i in range(0, len(data), piece):
            sock.sendall(data[i : i + piece])
    except OSError:
        return False
    return True


def request_head(url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> bytes:
    host, port = _address(url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of the server process (Linux), when its pid is known."""
    if pid is None:
        return None
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


# --- headers -----------------------------------------------------------------------------------------------------
def oversized_header(url: str, size: int, wait_s: float = 15) -> int:
    """GET /healthz with one header of `size` bytes: the status (431 expected; 200 means no limit)."""
    with connect(url) as sock:
        head = request_head(url, "/healthz")
        if not send_all(sock, head[:-2] + b"X-Big: " + b"a" * size + b"\r\n\r\n"):
            return read_status(sock, 1)  # closed while we were still sending: did it say why first?
        return read_status(sock, wait_s)


def many_headers(url: str, count: int, wait_s: float = 15) -> int:
    """GET /healthz with `count` small headers: the status (431 expected)."""
    with connect(url) as sock:
        extra = b"".join(b"X-H%d: v\r\n" % i for i in range(count))
        if not send_all(sock, request_head(url, "/healthz")[:-2] + extra + b"\r\n"):
            return read_status(sock, 1)
        return read_status(sock, wait_s)


def concurrent_oversized_headers(url: str, size: int, clients: int, pid: int | None = None,
                                 wait_s: float = 30) -> dict:
    """`clients` connections at once, each sending a `size`-byte header; statuses and the server's RSS growth."""
    before = rss_mib(pid)
    peak = [before or 0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mib(pid) or 0.0)

    watcher = threading.Thread(target=watch, daemon=True)
    if pid is not None:
        watcher.start()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(lambda _: oversized_header(url, size, wait_s), range(clients)))
    done.set()
    grew = None if before is None else round(peak[0] - before, 1)
    return {"statuses": _counts(statuses), "rss_growth_mib": grew}


def header_probes(url: str, pid: int | None = None) -> dict:
    sizes = {"1MB": MiB, "16MB": 16 * MiB, "64MB": 64 * MiB}
    result: dict = {f"header_{name}": oversized_header(url, size) for name, size in sizes.items()}
    result["headers_100k"] = many_headers(url, 100_000)
    result["headers_8x64MB"] = concurrent_oversized_headers(url, 64 * MiB, 8, pid)
    return result


# --- slowloris -----------------------------------------------------------------------------------------------
def _trickle(sock: socket.socket, data: bytes, interval_s: float, max_wait_s: float) -> tuple[int, float]:
    """Send `data` a byte per `interval_s` until the server answers or closes; (status, seconds until then)."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > max_wait_s:
            return -1, round(time.monotonic() - started, 2)
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return read_status(sock, 1), round(time.monotonic() - started, 2)
        status = read_status(sock, interval_s)
        if status != -1:
            return status, round(time.monotonic() - started, 2)
    return read_status(sock, max_wait_s), round(time.monotonic() - started, 2)


def slow_headers(url: str, interval_s: float = 0.5, max_wait_s: float = 30) -> dict:
    """A request head sent a byte at a time: when and how the server ends it (408 expected; -1: still open)."""
    with connect(url) as sock:
        head = request_head(url, "/healthz", {"X-Padding": "p" * 400})
        status, seconds = _trickle(sock, head, interval_s, max_wait_s)
    return {"status": status, "seconds": seconds}


def slow_body(url: str, key: str | None = None, interval_s: float = 0.5, max_wait_s: float = 60) -> dict:
    """POST /v1/ask whose declared 400-byte body comes a byte at a time (408 expected; -1: still open)."""
    body = json.dumps({"question": "q" * 380}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **_auth(key)}
    with connect(url) as sock:
        sock.sendall(request_head(url, "/v1/ask", headers, "POST"))
        status, seconds = _trickle(sock, body, interval_s, max_wait_s)
    return {"status": status, "seconds": seconds}


def idle_connection(url: str, max_wait_s: float = 30) -> dict:
    """A connection that never sends a byte: seconds until the server closes it (-1: still open at max_wait_s)."""
    started = time.monotonic()
    with connect(url) as sock:
        sock.settimeout(max_wait_s)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        except OSError:
            closed = True
    return {"closed": closed, "seconds": round(time.monotonic() - started, 2) if closed else -1}


def slowloris_probes(url: str, key: str | None = None, max_wait_s: float = 30) -> dict:
    with ThreadPoolExecutor(3) as pool:
        heads = pool.submit(slow_headers, url, 0.5, max_wait_s)
        body = pool.submit(slow_body, url, key, 0.5, max_wait_s * 2)
        idle = pool.submit(idle_connection, url, max_wait_s)
        return {"slow_headers": heads.result(), "slow_body": body.result(), "idle": idle.result()}


# --- bodies ------------------------------------------------------------------------------------------------------
def chunked_body(url: str, size: int = 2 * MiB, key: str | None = None) -> int:
    """POST /v1/ask with a `size`-byte chunked body (no Content-Length): the status (413 expected)."""

    def pieces():
        yield b'{"question": "' + b"x" * (size - 20)
        yield b'"}'

    headers = {"Content-Type": "application/json", **_auth(key)}
    try:
        return httpx.post(f"{url}/v1/ask", content=pieces(), headers=headers, timeout=60).status_code
    except httpx.TransportError:
        return 0


def body_probes(url: str, key: str | None = None) -> dict:
    return {"chunked_2MB": chunked_body(url, 2 * MiB, key)}


# --- clients that leave ---------------------------------------------------------------------------------------
def metric(url: str, name: str, key: str | None = None, labels: str = "") -> float:
    """One sample of /metrics (0 when absent)."""
    text = httpx.get(f"{url}/metrics", headers=_auth(key), timeout=10).text
    pattern = "^" + re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def ask_bytes(url: str, key: str | None, question: str = "What is new?", stream: bool = False) -> bytes:
    """A whole POST /v1/ask request, to send on a raw socket."""
    body = json.dumps({"question": question, "stream": stream}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **_auth(key)}
    return request_head(url, "/v1/ask", headers, "POST") + body


def ask_and_leave(url: str, key: str | None, after_s: float, stream: bool = False,
                  question: str = "What is new?") -> int:
    """POST /v1/ask and hang up after `after_s` seconds: the status if it answered sooner, else 0."""
    with connect(url) as sock:
        sock.sendall(ask_bytes(url, key, question, stream))
        status = read_status(sock, after_s)
    return max(status, 0)


def queued_disconnect(url: str, key: str | None = None, clients: int = 8, leave_after_s: float = 1.0,
                      drain_wait_s: float = 30) -> dict:
    """`clients` ask at once and all hang up after `leave_after_s`: how many got an answer, and how long the
    server's queue and generations took to drain afterwards (both should go to 0 at once: work for nobody)."""
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(lambda _: ask_and_leave(url, key, leave_after_s), range(clients)))
    left = time.monotonic()
    while time.monotonic() - left < drain_wait_s:
        busy = metric(url, "finassist_requests_queued", key) + metric(url, "finassist_generations_in_flight", key)
        if busy == 0:
            break
        time.sleep(0.1)
    drained = busy == 0
    gone = metric(url, "finassist_requests_total", key, 'endpoint="/v1/ask",status="499"')
    return {"answered_before_leaving": _counts([s for s in statuses if s]), "left": statuses.count(0),
            "drained": drained, "drain_seconds": round(time.monotonic() - left, 2) if drained else -1,
            "counted_499": gone}


def ask_flood(url: str, key: str | None = None, clients: int = 4, seconds: float = 5, client_timeout_s: float = 10,
              drain_wait_s: float = 30) -> dict:
    """`clients` ask back to back for `seconds`, each giving up after `client_timeout_s` (the issue's 20 clients
    for 60 s): status counts ("timeout" for those that gave up) and whether the queue drained right after."""
    statuses: list[int | str] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(headers=_auth(key), timeout=client_timeout_s) as http:
            while time.monotonic() < end:
                try:
                    status: int | str = http.post(f"{url}/v1/ask", json={"question": "What is new?"}).status_code
                except httpx.TimeoutException:
                    status = "timeout"
                with lock:
                    statuses.append(status)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client(), range(clients)))
    stopped = time.monotonic()
    busy = 1.0
    while time.monotonic() - stopped < drain_wait_s:
        busy = metric(url, "finassist_requests_queued", key) + metric(url, "finassist_generations_in_flight", key)
        if busy == 0:
            break
        time.sleep(0.1)
    return {"statuses": _counts(statuses), "drained": busy == 0,
            "drain_seconds": round(time.monotonic() - stopped, 2) if busy == 0 else -1}


# --- exposure ------------------------------------------------------------------------------------------------------
def open_endpoints(url: str) -> dict:
    """Statuses of the operational endpoints without any key (401 or 404 expected when a key is set)."""
    paths = ["/metrics", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz"]
    return {path: httpx.get(f"{url}{path}", timeout=10).status_code for path in paths}


SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options")


def ui_security_headers(url: str) -> dict:
    """The chat page's security headers (None where missing)."""
    headers = httpx.get(f"{url}/", timeout=10).headers
    return {name: headers.get(name) for name in SECURITY_HEADERS}


def exposure_probes(url: str) -> dict:
    return {"without_key": open_endpoints(url), "ui_headers": ui_security_headers(url)}


# --- helpers and script ---------------------------------------------------------------------------------------
def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _counts(statuses: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    return counts


PROBES: dict[str, Callable[[argparse.Namespace], dict]] = {
    "headers": lambda a: header_probes(a.url, a.pid),
    "slowloris": lambda a: slowloris_probes(a.url, a.key, a.wait),
    "body": lambda a: body_probes(a.url, a.key),
    "queue": lambda a: queued_disconnect(a.url, a.key, a.clients, a.leave_after, a.wait * 2),
    "exposure": lambda a: exposure_probes(a.url),
    "flood": lambda a: ask_flood(a.url, a.key, a.clients, a.flood_seconds),  # not run unless named in --only
}
DEFAULT_PROBES = "headers,slowloris,body,queue,exposure"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="The running API, e.g. http://127.0.0.1:8000")
    ap.add_argument("--key", help="FINASSIST_API_KEY of the server, when it has one.")
    ap.add_argument("--pid", type=int, help="The server's pid (same machine): report its memory growth.")
    ap.add_argument("--wait", type=float, default=15, help="Seconds a slowloris probe waits before giving up.")
    ap.add_argument("--clients", type=int, default=8, help="Clients that ask and leave (queue probe).")
    ap.add_argument("--leave-after", type=float, default=1.0, help="Seconds before those clients hang up.")
    ap.add_argument("--flood-seconds", type=float, default=5, help="How long the flood probe asks.")
    ap.add_argument("--only", default=DEFAULT_PROBES, help=f"Comma-separated subset of {','.join(PROBES)}.")
    args = ap.parse_args()
    args.url = args.url.rstrip("/")
    result = {}
    for name in args.only.split(","):
        print(f"probe {name} ...", file=sys.stderr, flush=True)
        result[name] = PROBES[name](args)
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
