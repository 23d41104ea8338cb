"""The embedded store serves searches while the pipeline writes to it, in one process (how the API will run it)."""

from __future__ import annotations

import threading
import time

from finassist.feature.flow import IngestStats, job_key, run_flow
from finassist.feature.sources.file import NewsFileSource
from finassist.retrieval import Retriever
from finassist.store import open_store

from conftest import write_jsonl
from newsgen import make_articles


def test_searches_succeed_and_see_new_articles_while_the_pipeline_writes(tmp_path, settings, embedder):
    rows = make_articles(40, long_every=0)
    for i, row in enumerate(rows):  # two articles a second: 20/s when replayed at 10x
        row["created_at"] = row["updated_at"] = f"2026-09-01T10:{i // 120:02d}:{(i // 2) % 60:02d}Z"
    path = write_jsonl(tmp_path / "news.jsonl", rows)
    stats = IngestStats()
    pipeline = threading.Thread(
        target=run_flow,
        args=(NewsFileSource([path], batch_size=4, speed=10), settings, job_key("file", [str(path)], settings)),
        kwargs={"stats": stats},
    )
    pipeline.start()
    retriever = Retriever(open_store(settings), embedder)
    seen: list[int] = []
    errors: list[Exception] = []
    while pipeline.is_alive():
        try:
            seen.append(len(retriever.retrieve("outlook", k=100)))
        except Exception as e:  # any failure while writing is a bug
            errors.append(e)
        time.sleep(0.05)
    pipeline.join()

    assert not errors
    assert stats.written == 40
    assert seen == sorted(seen), "a search saw fewer articles than an earlier one"
    assert 0 < seen[len(seen) // 2] < 40 and len(retriever.retrieve("outlook", k=100)) == 40
