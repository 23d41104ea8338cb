"""GET /v1/retrieve: search only, the hits the assistant would put in its prompt (the same question → filters
step as /v1/ask: named tickers and periods filter, a filing's named year and company rank first)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.params import Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from finassist.config import Settings
from finassist.domain import Hit
from finassist.inference.errors import as_api_error
from finassist.inference.services import Services
from finassist.retrieval import retrieve_for_question


class RetrieveResponse(BaseModel):
    hits: list[Hit]  # the retriever's own hit model: what /v1/ask would put in the prompt
    symbols: list[str]  # the ticker filter applied (given, or read from the question)
    notes: list[str]  # how the question narrowed or widened the search
    took_ms: float


def add_search_routes(app: FastAPI, settings: Settings, services: Services, auth: list[Depends]) -> None:

    @app.get("/v1/retrieve", response_model=RetrieveResponse, dependencies=auth)
    async def retrieve(
        q: Annotated[str, Query(min_length=1, max_length=2_000, description="The search text.")],
        k: Annotated[int, Query(ge=1, le=50)] = settings.retrieval_k,
        symbols: Annotated[str | None, Query(max_length=400, description="Comma-separated tickers.")] = None,
        since: Annotated[datetime | None, Query(description="Only news published at or after (ISO 8601).")] = None,
    ) -> RetrieveResponse:
        chain = services.require_chain()
        wanted = None if symbols is None else [s.strip().upper() for s in symbols.split(",") if s.strip()]
        started = time.monotonic()
        try:
            found = await run_in_threadpool(
                retrieve_for_question,
                chain.retriever,
                q,
                k,
                settings.recency_weight,
                settings.recency_half_life_hours,
                chain.aliases,
                symbols=wanted,
                since=since,
                filing_boost=settings.filing_boost,
            )
        except Exception as exc:
            raise as_api_error(exc) from None
        took = round((time.monotonic() - started) * 1000, 2)
        return RetrieveResponse(hits=found.hits, symbols=found.symbols, notes=found.notes, took_ms=took)
