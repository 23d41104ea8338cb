"""Tickers named in a question become a retrieval filter: "$TSLA", a known ticker ("VLTX"), or a known name ("Tesla").

Bare uppercase words count only when they are known tickers, so "CEO" or "AI" never become filters.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z])?)\b")
_WORD = re.compile(r"\b[A-Z]{2,7}(?:\.[A-Z])?\b")


@cache
def builtin_aliases() -> dict[str, str]:
    raw = json.loads(resources.files("finassist.inference").joinpath("symbols.json").read_text())
    return {name: ticker for name, ticker in raw.items() if not name.startswith("_")}


def load_aliases(extra: Path | None = None) -> dict[str, str]:
    aliases = dict(builtin_aliases())
    if extra is not None:
        try:
            more = json.loads(Path(extra).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable symbol aliases {extra}: {exc}") from exc
        if not isinstance(more, dict) or not all(isinstance(v, str) for v in more.values()):
            raise ValueError(f"{extra} must be a JSON object of name -> ticker")
        aliases.update({k: v for k, v in more.items() if not k.startswith("_")})
    return aliases


def symbols_in(question: str, aliases: dict[str, str]) -> list[str]:
    """Tickers the question names, in order of appearance, without duplicates."""
    found: list[tuple[int, str]] = [(m.start(), m.group(1).upper()) for m in _CASHTAG.finditer(question)]
    known = {t.upper() for t in aliases.values()}
    found += [(m.start(), m.group(0)) for m in _WORD.finditer(question) if m.group(0) in known]
    for name, ticker in aliases.items():
        for m in re.finditer(rf"\b{re.escape(name)}\b", question, flags=re.IGNORECASE):
            found.append((m.start(), ticker.upper()))
    seen: dict[str, None] = {}
    for _, ticker in sorted(found):
        seen.setdefault(ticker)
    return list(seen)
