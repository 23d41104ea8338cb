"""Inference commands: serve (API, UI, optional in-process pipeline) and ask."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from finassist.cli.common import (
    JsonOpt,
    alpaca_settings,
    app,
    emit,
    fail,
    load_settings,
    log,
    parse_symbols,
    parse_when,
    setup_logging,
)


def _pipeline_in_background(source, settings, job: str):
    """The streaming feature pipeline as a background task of the API process: the embedded store can be open in
    one process only, so the pipeline that keeps it fresh runs beside the API that reads it."""

    def run() -> None:
        from finassist.feature.flow import run_flow

        # A failure propagates: the API logs "background task ... stopped" and /readyz stops saying ready.
        stats = run_flow(source, settings, job, workers=settings.workers)
        log.warning("feature pipeline finished: %s", stats.as_dict())

    run.__name__ = f"pipeline-{job[:24]}"
    return run


def _ask_once_ready(url: str, question: str, settings, after=None):
    """Once the server is ready, ask it one question over HTTP, like any client, and print the answer (then call
    `after`)."""

    def run() -> None:
        import time

        import httpx

        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
        while True:  # the socket opens after startup, the model loads after that
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        try:
            r = httpx.post(f"{url}/v1/ask", json={"question": question}, headers=headers, timeout=300)
            r.raise_for_status()
        except httpx.HTTPError as e:
            typer.echo(f"example question failed: {e}", err=True)
            return
        answer = r.json()
        lines = [f"\nQ: {question}", f"A: {answer['answer']}", "Sources:"]
        lines += [
            f"  [{s['rank']}] {s['headline']} ({s['created_at'][:10]}, {','.join(s['symbols'])})"
            for s in answer["sources"]
        ]
        lines.append(f"({answer['latency_ms'] / 1000:.1f} s; chat UI: {url}/ ; Ctrl-C stops the server)\n")
        typer.echo("\n".join(lines))
        if after is not None:
            after()

    return run


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default FINASSIST_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FINASSIST_API_PORT).")] = None,
    ingest_file: Annotated[
        list[Path] | None, typer.Option("--ingest-file", help="Replay these news files into the store while serving.")
    ] = None,
    speed: Annotated[float, typer.Option(help="Replay pace for --ingest-file (0 = as fast as possible).")] = 0,
    ingest_stream: Annotated[
        bool, typer.Option("--ingest-stream", help="Follow Alpaca's news websocket while serving.")
    ] = False,
    ask_question: Annotated[
        str | None, typer.Option("--ask", help="Once ready, ask this question through the API and print the answer.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="API processes behind the port (each loads the model; needs a Qdrant "
                          "server, as the embedded store opens in one process only).")
    ] = 1,
) -> None:
    """Serve the assistant: REST API, OpenAI-compatible endpoint and chat UI (optionally keeping the store fresh)."""
    setup_logging()
    from finassist.feature.flow import job_key

    settings = alpaca_settings() if ingest_stream else load_settings()
    if workers > 1:
        if settings.qdrant_url is None:
            fail("--workers needs a Qdrant server (FINASSIST_QDRANT_URL): the embedded store opens in one process only")
        if ingest_file or ingest_stream:
            fail("--workers runs the API only: run the feature pipeline as its own process (finassist ingest ...)")
    background = []
    if ingest_file:
        from finassist.feature.sources.file import NewsFileSource

        missing = [str(p) for p in ingest_file if not p.is_file()]
        if missing:
            fail(f"no such file: {', '.join(missing)}")
        source = NewsFileSource(ingest_file, batch_size=settings.batch_articles, speed=speed)
        job = job_key("file", [str(p.resolve()) for p in ingest_file], settings)
        background.append(_pipeline_in_background(source, settings, job))
    if ingest_stream:
        from finassist.feature.sources.alpaca_stream import AlpacaStreamSource

        job = job_key("stream", [""], settings)
        background.append(_pipeline_in_background(AlpacaStreamSource(settings, None), settings, job))
    run_server(settings, host, port, background, ask_question, workers=workers)


def run_server(settings, host: str | None = None, port: int | None = None, background=(),
               ask_question: str | None = None, after_answer=None, workers: int = 1) -> None:
    """uvicorn with the API (and `background` tasks); with `ask_question`, one example answer once it is ready.
    With several workers uvicorn starts that many processes on one port, each building the app from the
    environment (so settings given only on the command line are not used there)."""
    import threading

    import uvicorn

    from finassist.inference.api import create_app, uvicorn_options

    host, port = host or settings.api_host, port or settings.api_port
    docs = "docs: /docs, " if settings.api_docs else ""
    typer.echo(f"finassist API on http://{host}:{port}  (chat UI: /, {docs}ready: /readyz)", err=True)
    level = os.environ.get("FINASSIST_LOG_LEVEL", "WARNING").lower()
    if ask_question:  # like any client, polling /readyz until the socket is open and the model loaded
        asker = _ask_once_ready(f"http://{host}:{port}", ask_question, settings, after_answer)
        threading.Thread(target=asker, name="ask-once", daemon=True).start()
    # h11 with header limits and a request-head timeout (see inference/protocol.py).
    options = {"host": host, "port": port, "log_level": level, **uvicorn_options(settings)}
    if workers > 1:
        if settings.llm_threads is None:  # each worker's engine gets its share of the cores, not all of them
            os.environ["FINASSIST_LLM_THREADS"] = str(max(1, settings.engine_threads // workers))
        uvicorn.run("finassist.inference.api:app_from_env", factory=True, workers=workers, **options)
        return
    uvicorn.run(create_app(settings, background=tuple(background)), **options)


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    about_me: Annotated[str, typer.Option("--about-me", help="Who is asking: age, goals, risk appetite...")] = "",
    symbols: Annotated[str | None, typer.Option(help="Only news about these tickers (comma-separated).")] = None,
    since: Annotated[str | None, typer.Option(help="Only news created at/after: ISO date/time or age (7d).")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=20, help="News articles in the prompt.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, max=4096, help="Answer length limit in tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question in-process with the same chain the API serves (streams the answer to the terminal)."""
    setup_logging()
    from pydantic import ValidationError

    from finassist.inference.api import Services, as_api_error
    from finassist.inference.chain import Answer, AskInput

    settings = load_settings()
    try:
        request = AskInput(
            question=question,
            about_me=about_me,
            symbols=parse_symbols(symbols) if symbols is not None else None,
            since=parse_when(since) if since else None,
            k=k,
            max_new_tokens=max_tokens,
        )
    except (ValidationError, ValueError) as e:
        fail(str(e).splitlines()[0] if isinstance(e, ValueError) and not isinstance(e, ValidationError) else
              "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()))
    services = Services(settings)
    services.load()
    if services.chain is None:
        fail(services.error or "could not load the model and the store")
    answer = None
    try:
        for item in services.chain.stream(request):
            if isinstance(item, Answer):
                answer = item
            elif not as_json:
                sys.stdout.write(item)
                sys.stdout.flush()
    except Exception as e:
        fail(as_api_error(e).message)
    finally:
        if services.tracer is not None:
            services.tracer.flush()
    assert answer is not None
    if as_json:
        emit(answer.model_dump(mode="json"), True)
        return
    typer.echo("\n\nSources:")
    for s in answer.sources:
        typer.echo(f"  [{s.rank}] {s.headline} ({s.created_at:%Y-%m-%d}, {','.join(s.symbols)}) {s.url}")
    typer.echo(
        f"({answer.model}{' + ' + answer.adapter if answer.adapter else ''}, prompt {answer.prompt_version}, "
        f"{answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens, {answer.latency_ms / 1000:.1f} s)",
        err=True,
    )
