"""Validation: a raw record becomes a `NewsArticle`, or a `Quarantined` record that says why it could not."""

from __future__ import annotations

import json

from pydantic import ValidationError

from finassist.domain import NewsArticle, Quarantined, RawRecord
from finassist.feature.guard import REASON_KEEP_CHARS, describe_error, excerpt


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "record"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def _reject(raw: RawRecord, reason: str) -> Quarantined:
    return Quarantined(origin=raw.origin, step="validate", reason=reason[:REASON_KEEP_CHARS], raw=excerpt(raw.payload))


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
        except RecursionError:
            return _reject(raw, "malformed JSON: nested too deeply")
        except ValueError as e:  # e.g. an integer literal longer than Python's 4,300-digit conversion limit
            return _reject(raw, f"malformed JSON: {describe_error(e)}")
    if not isinstance(payload, dict):
        return _reject(raw, f"expected a JSON object, got {type(payload).__name__}")
    try:
        return NewsArticle.model_validate(payload)
    except ValidationError as e:
        return _reject(raw, f"invalid fields: {_describe(e)}")
    except RecursionError:
        return _reject(raw, "invalid fields: nested too deeply")
