"""Validation: a raw record becomes a `NewsArticle`, or a `Quarantined` record that says why it could not."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from finassist.domain import NewsArticle, Quarantined, RawRecord

RAW_KEEP_CHARS = 2_000  # how much of a bad record the quarantine file keeps


def _excerpt(payload: Any) -> str:
    if isinstance(payload, bytes):
        text = payload[:RAW_KEEP_CHARS].decode("utf-8", errors="backslashreplace")
    elif isinstance(payload, str):
        text = payload[:RAW_KEEP_CHARS]
    else:
        text = json.dumps(payload, default=str)[:RAW_KEEP_CHARS]
    return text.rstrip("\r\n")


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def _reject(raw: RawRecord, reason: str) -> Quarantined:
    return Quarantined(origin=raw.origin, step="validate", reason=reason, raw=_excerpt(raw.payload))


def validate_record(raw: RawRecord, max_bytes: int) -> NewsArticle | Quarantined:
    """Parse and validate one raw record. Never raises: every failure becomes a `Quarantined` with its reason."""
    payload = raw.payload
    if isinstance(payload, str | bytes):
        size = len(payload) if isinstance(payload, bytes) else len(payload.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            return _reject(raw, f"record too large: {size} bytes > limit {max_bytes}")
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError as e:
                return _reject(raw, f"not valid UTF-8: byte 0x{payload[e.start]:02x} at offset {e.start}")
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as e:
            return _reject(raw, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}")
    if not isinstance(payload, dict):
        return _reject(raw, f"expected a JSON object, got {type(payload).__name__}")
    try:
        return NewsArticle.model_validate(payload)
    except ValidationError as e:
        return _reject(raw, f"invalid fields: {_describe(e)}")
