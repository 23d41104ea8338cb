"""Evaluation metrics, as pure functions (plus one model call for the answer's log-likelihood).

- Perplexity of the reference answers given the serving prompt: exp(total negative log-likelihood of the answer
  tokens / number of answer tokens), token-weighted over the split. (The reference course computed
  exp(mean(logits)), which is not a perplexity.)
- ROUGE-L F1 between a generated answer and the teacher's, on lower-cased word tokens (longest common subsequence).
- Groundedness: an answer is grounded when it states at least one fact (a number or a capitalised name) found in
  its news context and no number that is absent from it; the metric is the share of grounded answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from finassist.grounding import context_text, facts, groundedness, is_grounded

__all__ = ["answer_nll", "context_text", "facts", "groundedness", "is_grounded", "perplexity", "rouge_l", "words"]

_WORD = re.compile(r"\w+(?:[.,']\w+)*")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (beta = 1) on lower-cased word tokens."""
    a, b = words(candidate), words(reference)
    if not a or not b:
        return 0.0
    # LCS length by dynamic programming over the shorter sequence (O(len(a) * len(b)) time, O(min) memory).
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(words(candidate)), lcs / len(words(reference))
    return 2 * precision * recall / (precision + recall)


def perplexity(nll_sums: Sequence[float], token_counts: Sequence[int]) -> float:
    """Token-weighted perplexity over a split from per-example (sum of NLL, token count)."""
    tokens = sum(token_counts)
    if tokens == 0:
        raise ValueError("no answer tokens to score")
    return math.exp(sum(nll_sums) / tokens)


def answer_nll(model, tokenizer, prompt_messages: list[dict[str, str]], answer: str) -> tuple[float, int]:
    """Sum of the negative log-likelihood of the answer's tokens (and the end-of-turn) after the serving prompt,
    and how many tokens that is."""
    import torch

    full = [*prompt_messages, {"role": "assistant", "content": answer}]
    prompt_ids = tokenizer.apply_chat_template(prompt_messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=False)
    full_ids = tokenizer.apply_chat_template(full, tokenize=True, return_dict=False)
    # The scored part is what the template appends after the prompt: the answer and its end-of-turn marker.
    start = len(prompt_ids)
    if full_ids[:start] != prompt_ids:
        raise ValueError("the chat template renders the prompt differently with an answer after it")
    ids = torch.tensor([full_ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, start - 1 : -1].float()
    targets = ids[0, start:]
    nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    return float(nll), int(targets.numel())
