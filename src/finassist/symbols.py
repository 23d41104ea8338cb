"""Tickers named in a question become a retrieval filter: "$TSLA", a known ticker ("VLTX"), or a known name ("Tesla").

Bare uppercase words count only when they are known tickers, so "CEO" or "AI" never become filters.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

from finassist.domain import SYMBOL_PATTERN

# Up to 10 letters: crypto pairs such as ZEPHUSD are longer than the 1-5 letters of a stock ticker.
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,10}(?:\.[A-Za-z])?)\b")
_WORD = re.compile(r"\b[A-Z]{2,10}(?:\.[A-Z])?\b")


def _checked(aliases: dict, origin: str) -> dict[str, str]:
    """name -> ticker without the "_comment"-style keys; an empty name would match every question."""
    if not isinstance(aliases, dict):
        raise ValueError(f"{origin} must be a JSON object of name -> ticker")
    out: dict[str, str] = {}
    for name, ticker in aliases.items():
        if name.startswith("_"):
            continue
        if not name.strip() or not isinstance(ticker, str) or not re.match(SYMBOL_PATTERN, ticker.strip().upper()):
            raise ValueError(f"{origin}: {name!r} -> {ticker!r} is not a name -> ticker pair")
        out[name.strip()] = ticker.strip().upper()
    return out


@cache
def builtin_aliases() -> dict[str, str]:
    raw = json.loads(resources.files("finassist").joinpath("symbols.json").read_text())
    return _checked(raw, "symbols.json")


def load_aliases(extra: Path | None = None) -> dict[str, str]:
    aliases = dict(builtin_aliases())
    if extra is not None:
        try:
            more = json.loads(Path(extra).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"unreadable symbol aliases {extra}: {exc}") from exc
        aliases.update(_checked(more, str(extra)))
    return aliases


def symbols_in(question: str, aliases: dict[str, str]) -> list[str]:
    """Tickers the question names, in order of appearance, without duplicates."""
    found: list[tuple[int, str]] = [(m.start(), m.group(1).upper()) for m in _CASHTAG.finditer(question)]
    known = {t.upper() for t in aliases.values()}
    found += [(m.start(), m.group(0)) for m in _WORD.finditer(question) if m.group(0) in known]
    for name, ticker in aliases.items():
        # Lookarounds, not \b: a name may end in punctuation ("Coinbase Inc.").
        for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", question, flags=re.IGNORECASE):
            found.append((m.start(), ticker.upper()))
    seen: dict[str, None] = {}
    for _, ticker in sorted(found):
        seen.setdefault(ticker)
    return list(seen)
