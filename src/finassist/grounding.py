"""Groundedness of an answer in its news, as pure functions: shared by the training evaluation (the share of grounded
answers on held-out questions) and serving (each served answer, traced, and a rolling gauge on /metrics).

An answer is grounded when it states at least one fact (a number or a capitalised name) found in its news context
and no number that is absent from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-Z][a-zA-Z]{2,}\b|\b[A-Z]{2,6}\b")
# Capitalised words that open sentences or are too common to count as facts.
_NOT_FACTS = {
    "The", "This", "That", "These", "Those", "According", "However", "Based", "News", "Yes", "Its", "It", "In",
    "On", "For", "And", "But", "With", "As", "At", "By", "If", "Investors", "Shares", "Question", "About", "AI",
}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


_CITATION = re.compile(r"\[\d+\]")


def facts(text: str) -> tuple[set[str], set[str]]:
    """The numbers and capitalised names a text states (citation markers like [1] are not facts)."""
    text = _CITATION.sub(" ", text)
    names = {n for n in _NAME.findall(text) if n not in _NOT_FACTS}
    return _numbers(text), names


def is_grounded(answer: str, context: str) -> bool:
    numbers, names = facts(answer)
    context_numbers, context_lower = _numbers(context), context.lower()
    supported = {n for n in numbers if n in context_numbers} | {n for n in names if n.lower() in context_lower}
    return bool(supported) and numbers <= context_numbers


def groundedness(answers: Sequence[str], contexts: Sequence[str]) -> float:
    if len(answers) != len(contexts):
        raise ValueError("one context per answer")
    if not answers:
        return 0.0
    return sum(is_grounded(a, c) for a, c in zip(answers, contexts, strict=True)) / len(answers)


def context_text(hits: Sequence) -> str:
    """The news an answer is checked against: each hit's headline and text, as the prompt gives them."""
    return "\n".join(f"{h.headline}\n{h.text}" for h in hits)
