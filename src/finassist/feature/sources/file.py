"""Replay of news from JSONL / JSONL.gz files in Alpaca's schema, as fast as possible or paced by `created_at`."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from finassist.domain import RawRecord


@dataclass(frozen=True, slots=True)
class FileOffset:
    """Resume state of one file: the byte offset (in the decompressed stream) of the next unread line."""

    offset: int = 0
    line: int = 0


def open_news_file(path: Path) -> IO[bytes]:
    """Open a JSONL file, transparently decompressing `.gz` (checked by magic bytes, not by name)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def _created_at(line: bytes) -> float | None:
    """Best-effort timestamp for pacing; a record without one is emitted at once and judged by validation."""
    try:
        value = json.loads(line).get("created_at")
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError, TypeError):
        return None


class _FilePartition(StatefulSourcePartition[RawRecord, FileOffset]):
    def __init__(self, path: Path, state: FileOffset, batch_size: int, speed: float):
        self._path = path
        self._fh = open_news_file(path)
        self._fh.seek(state.offset)
        self._state = state
        self._batch_size = batch_size
        self._speed = speed
        # Pacing: wall-clock origin and the first record's created_at.
        self._t0: tuple[float, float] | None = None
        self._pending: bytes | None = None

    def _due(self, line: bytes) -> bool:
        if self._speed <= 0:
            return True
        ts = _created_at(line)
        if ts is None:
            return True
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = (now, ts)
        return now >= self._t0[0] + (ts - self._t0[1]) / self._speed

    def next_batch(self) -> list[RawRecord]:
        batch: list[RawRecord] = []
        while len(batch) < self._batch_size:
            line = self._pending if self._pending is not None else self._fh.readline()
            if not line:
                if batch:
                    return batch
                raise StopIteration
            if not self._due(line):
                self._pending = line
                return batch
            self._pending = None
            self._state = FileOffset(self._state.offset + len(line), self._state.line + 1)
            if line.strip():
                batch.append(RawRecord(origin=f"{self._path.name}:{self._state.line}", payload=line))
        return batch

    def next_awake(self) -> datetime | None:
        # While a paced record waits, poll every 10 ms rather than spinning.
        if self._pending is not None:
            from datetime import UTC, timedelta

            return datetime.now(UTC) + timedelta(milliseconds=10)
        return None

    def snapshot(self) -> FileOffset:
        return self._state

    def close(self) -> None:
        self._fh.close()


class NewsFileSource(FixedPartitionedSource[RawRecord, FileOffset]):
    """One partition per file; each file is read by one worker and resumes from its byte offset."""

    def __init__(self, paths: Sequence[Path], batch_size: int = 64, speed: float = 0.0):
        self._paths = {str(p): Path(p) for p in paths}
        for p in self._paths.values():
            if not p.is_file():
                raise FileNotFoundError(f"news file not found: {p}")
        self._batch_size = batch_size
        self._speed = speed

    def list_parts(self) -> list[str]:
        return list(self._paths)

    def build_part(self, step_id: str, for_part: str, resume_state: FileOffset | None) -> _FilePartition:
        return _FilePartition(self._paths[for_part], resume_state or FileOffset(), self._batch_size, self._speed)
