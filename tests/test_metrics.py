"""Evaluation math: ROUGE-L, groundedness and a perplexity that is one (checked against the model's own loss)."""

from __future__ import annotations

import math

import pytest
import torch

from finassist.training.metrics import answer_nll, facts, groundedness, is_grounded, perplexity, rouge_l


def test_rouge_l_is_the_lcs_f1_on_words():
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("Revenue rose 5%.", "revenue ROSE 5%") == 1.0
    assert rouge_l("alpha beta", "gamma delta") == 0.0
    assert rouge_l("", "anything") == 0.0
    # precision and recall differ: 2 common words of 2 and of 4 -> P=1, R=0.5
    assert rouge_l("cat mat", "the cat the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)


def test_an_answer_is_grounded_when_its_facts_are_in_the_context_and_no_number_is_made_up():
    context = "Brookward Financial cut its quarterly dividend by 20% to $0.40 a share."
    assert is_grounded("Brookward cut its dividend by 20% [1].", context)
    assert not is_grounded("Brookward cut its dividend by 35% [1].", context)  # an invented number
    assert not is_grounded("The company did something.", context)  # states nothing checkable
    assert is_grounded("The news says Brookward Financial lowered its payout.", context)
    assert facts("Shares of VLTX rose 1,200 points to 3.75") == ({"1200", "3.75"}, {"VLTX"})
    assert groundedness(["Brookward cut 20%.", "Made up 99%."], [context, context]) == 0.5
    with pytest.raises(ValueError):
        groundedness(["a"], [])


def test_perplexity_is_exp_of_the_token_weighted_mean_nll():
    assert perplexity([3 * math.log(2)], [3]) == pytest.approx(2.0)
    # token-weighted, not the mean of per-example perplexities
    expected = math.exp((math.log(2) + 3 * math.log(4)) / 4)
    assert perplexity([math.log(2), 3 * math.log(4)], [1, 3]) == pytest.approx(expected)
    with pytest.raises(ValueError):
        perplexity([], [])


@pytest.mark.slow
def test_answer_nll_agrees_with_the_models_own_masked_loss(llm):
    model, tokenizer = llm.model, llm.tokenizer
    prompt = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What rose?"}]
    answer = "Voltrix shares rose 4% after the guidance raise."
    nll, n = answer_nll(model, tokenizer, prompt, answer)
    prompt_len = len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                   return_dict=False))
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=True,
                                         return_dict=False)
    ids = torch.tensor([full])
    labels = ids.clone()
    labels[0, :prompt_len] = -100
    with torch.inference_mode():
        loss = model(input_ids=ids, labels=labels).loss  # mean NLL over the answer tokens, computed by HF
    assert n == len(full) - prompt_len
    assert nll / n == pytest.approx(float(loss), rel=1e-4)
    # A fluent answer is far more likely than the same words shuffled.
    shuffled, n2 = answer_nll(model, tokenizer, prompt, "guidance 4% Voltrix raise. after shares the rose")
    assert perplexity([nll], [n]) < perplexity([shuffled], [n2])
