"""The LLM port on both backends: the in-process transformers model (the packaged SmolLM2-135M, with and without a
LoRA adapter) and an OpenAI-compatible endpoint (a local fake that speaks the protocol)."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from pathlib import Path

import openai
import pytest

from finassist.config import Settings
from finassist.llm import (
    Generation,
    GenerationParams,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    open_llm,
)
from finassist.llm.local import PACKAGED_MODEL, TransformersLLM
from finassist.llm.remote import OpenAICompatibleLLM

from fake_openai import FakeOpenAI, pieces_of, prompt_tokens_of

SHORT = [{"role": "user", "content": "What is 2+2? Answer with one number."}]  # SmolLM2 answers and stops
LONG = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]  # SmolLM2 goes on and on


def split(items: list) -> tuple[list[str], Generation]:
    """The pieces and the final Generation of a stream, checking the shape of the stream on the way."""
    *pieces, last = items
    assert all(isinstance(p, str) and p for p in pieces)
    assert isinstance(last, Generation)
    return pieces, last


# --- transformers backend (the session's packaged model) ------------------------------------------


@pytest.mark.slow
def test_stream_yields_pieces_then_one_generation_with_real_counts(llm):
    pieces, gen = split(list(llm.stream(SHORT, GenerationParams(max_new_tokens=16))))
    assert pieces
    assert gen.text == "".join(pieces).strip()
    assert gen.prompt_tokens == llm.count_tokens(SHORT)
    assert gen.finish_reason == "stop"
    # The answer's own tokens plus the end-of-turn token that stopped it.
    assert gen.completion_tokens == len(llm.tokenizer.encode(gen.text, add_special_tokens=False)) + 1
    assert gen.completion_tokens < 16
    assert 0 < gen.first_token_s <= gen.seconds


@pytest.mark.slow
def test_greedy_generation_is_deterministic_and_stops_at_max_new_tokens(llm):
    params = GenerationParams(max_new_tokens=6)
    first, second = llm.generate(LONG, params), llm.generate(LONG, params)
    assert first.text == second.text != ""
    assert (first.finish_reason, first.completion_tokens) == ("length", 6)
    assert first.prompt_tokens == llm.count_tokens(LONG)


@pytest.mark.slow
def test_a_batch_gives_the_answers_one_by_one_generation_gives(llm):
    """Left-padded batch decoding (used for teaching and evaluation) changes speed, not answers."""
    conversations = [
        [{"role": "user", "content": "Name a primary color."}],
        [{"role": "user", "content": "What is a stock dividend? Explain it to a new investor in detail."}],
        [{"role": "user", "content": "Say hi."}],
    ]
    params = GenerationParams(max_new_tokens=12)
    batch = llm.generate_batch(conversations, params)
    single = [llm.generate(c, params) for c in conversations]
    assert [g.text for g in batch] == [g.text for g in single]
    assert [g.prompt_tokens for g in batch] == [g.prompt_tokens for g in single]
    assert [(g.completion_tokens, g.finish_reason) for g in batch] == [
        (g.completion_tokens, g.finish_reason) for g in single
    ]
    assert llm.generate_batch([], params) == []
    with pytest.raises(LLMTimeoutError):
        llm.generate_batch(conversations, GenerationParams(max_new_tokens=200, timeout_s=0.05))


def test_generation_past_its_budget_is_stopped_with_a_timeout(llm):
    with pytest.raises(LLMTimeoutError, match="budget"):
        llm.generate(LONG, GenerationParams(max_new_tokens=200, timeout_s=1e-6))
    assert llm.generate(SHORT, GenerationParams(max_new_tokens=4, timeout_s=30)).completion_tokens > 0


@pytest.mark.slow
def test_abandoning_a_stream_stops_generation_and_frees_the_model(llm):
    stream = llm.stream(LONG, GenerationParams(max_new_tokens=400))
    assert isinstance(next(stream), str)
    started = time.monotonic()
    stream.close()  # what a web server does when the client goes away
    assert time.monotonic() - started < 5.0  # not the ~25 s that 400 tokens take on CPU
    # Held lock -> this call would time out waiting for the model.
    assert llm.generate(SHORT, GenerationParams(max_new_tokens=4, timeout_s=10)).completion_tokens > 0


@pytest.mark.slow
def test_a_second_caller_waits_for_the_model_within_its_budget(llm):
    busy = llm.stream(LONG, GenerationParams(max_new_tokens=400))
    try:
        next(busy)
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError, match="waiting for the model"):
            llm.generate(SHORT, GenerationParams(max_new_tokens=4, timeout_s=0.3))
        assert time.monotonic() - started < 5.0  # not the ~25 s the busy generation takes
    finally:
        busy.close()


@pytest.mark.slow
def test_a_prompt_larger_than_the_context_window_is_refused(llm):
    huge = [{"role": "user", "content": "stock " * (llm.info.context_window + 10)}]
    assert llm.count_tokens(huge) > llm.info.context_window
    with pytest.raises(LLMError, match="does not fit"):
        llm.generate(huge, GenerationParams(max_new_tokens=4))
    assert llm.generate(SHORT, GenerationParams(max_new_tokens=2, timeout_s=10)).completion_tokens == 2


@pytest.mark.slow
def test_packaged_model_info(llm):
    assert llm.info.backend == "transformers"
    assert llm.info.model == PACKAGED_MODEL
    assert (llm.info.adapter, llm.info.prompt_version) == (None, None)
    assert llm.info.context_window == 8192


# --- LoRA adapters ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory) -> Path:
    """A LoRA adapter on the packaged base whose B weights are random, so it visibly changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(Settings().models_path / PACKAGED_MODEL, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)  # peft starts B at zero: an untrained adapter changes nothing
    path = tmp_path_factory.mktemp("adapter") / "finassist-lora"
    model.save_pretrained(path)
    (path / "finassist.json").write_text(json.dumps({"prompt_version": "v1", "base_model": PACKAGED_MODEL}))
    return path


@pytest.mark.slow
def test_an_adapter_loads_reports_its_prompt_version_and_changes_the_output(llm, adapter_dir):
    import torch

    adapted = TransformersLLM(adapter=adapter_dir, models_dir=Settings().models_path, device="cpu")
    try:
        assert adapted.info.adapter == str(adapter_dir)
        assert adapted.info.prompt_version == "v1"
        assert adapted.info.model == PACKAGED_MODEL
        ids = llm.tokenizer.apply_chat_template(
            SHORT, add_generation_prompt=True, return_tensors="pt", return_dict=False
        )
        with torch.inference_mode():
            base_logits = llm.model(ids).logits[0, -1]
            adapted_logits = adapted.model(ids).logits[0, -1]
        assert not torch.allclose(base_logits, adapted_logits, atol=1e-3)
        params = GenerationParams(max_new_tokens=8)
        assert adapted.generate(SHORT, params).text != llm.generate(SHORT, params).text
    finally:
        adapted.close()


def test_a_folder_without_adapter_config_is_refused_before_loading_the_base(tmp_path):
    with pytest.raises(LLMError, match=r"not a LoRA adapter folder \(no adapter_config.json\)"):
        TransformersLLM(adapter=tmp_path, models_dir=tmp_path / "no-models-here")
    assert not (tmp_path / "no-models-here").exists()  # the base model was never converted or loaded


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ('{"prompt_version": "v9"}', r"unknown prompt version 'v9'"),
        ('["v1"]', "must be a JSON object"),
        ("{not json", "unreadable adapter metadata"),
    ],
)
def test_bad_adapter_metadata_is_refused_at_load(tmp_path, meta, message):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "finassist.json").write_text(meta)
    with pytest.raises(LLMError, match=message):
        TransformersLLM(adapter=tmp_path, models_dir=tmp_path / "no-models-here")


# --- OpenAI-compatible backend -----------------------------------------------------------------------

KEY = "sk-test-0123456789abcdef"
REPLY = "Voltrix shares fell 4% after the recall [1]. This is not investment advice."
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How did Voltrix react?"}]


@pytest.fixture
def fake():
    with FakeOpenAI(reply=REPLY, api_key=KEY) as server:
        yield server


def remote(fake: FakeOpenAI, **kwargs) -> OpenAICompatibleLLM:
    kwargs = {"api_key": KEY, "max_retries": 0, **kwargs}
    return OpenAICompatibleLLM(base_url=fake.url, model="fake-model", **kwargs)


def test_remote_stream_yields_pieces_then_the_servers_usage(fake):
    pieces, gen = split(list(remote(fake).stream(MESSAGES, GenerationParams(max_new_tokens=64, temperature=0.2))))
    assert pieces == pieces_of(REPLY)
    assert gen.text == "".join(pieces).strip() == REPLY
    assert (gen.prompt_tokens, gen.completion_tokens) == (prompt_tokens_of(MESSAGES), len(pieces))
    assert gen.extra["usage_estimated"] is False
    assert gen.finish_reason == "stop"
    (request,) = fake.chat_requests
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == MESSAGES
    assert (request.body["max_tokens"], request.body["temperature"], request.body["stream"]) == (64, 0.2, True)
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_remote_answer_cut_at_max_new_tokens_reports_length(fake):
    gen = remote(fake).generate(MESSAGES, GenerationParams(max_new_tokens=3))
    assert (gen.text, gen.completion_tokens, gen.finish_reason) == ("Voltrix shares fell", 3, "length")


def test_remote_without_usage_estimates_the_counts_and_says_so():
    with FakeOpenAI(reply=REPLY, usage=False) as server:
        llm = remote(server, api_key=None)
        gen = llm.generate(MESSAGES, GenerationParams(max_new_tokens=64))
    assert gen.text == REPLY
    assert gen.extra["usage_estimated"] is True
    assert gen.prompt_tokens == llm.count_tokens(MESSAGES)
    assert gen.completion_tokens == math.ceil(len(REPLY) / 3)  # the answer's text alone, no message overhead
    assert server.chat_requests[0].headers["authorization"] == "Bearer not-needed"


def test_remote_endpoint_failing_every_time_is_unavailable_after_the_retries(fake):
    fake.fail_next(10, status=500)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match="HTTP 500"):
        remote(fake, max_retries=1).generate(MESSAGES, GenerationParams(max_new_tokens=8))
    assert len(fake.chat_requests) == 2
    assert time.monotonic() - started < 6.0


def test_remote_endpoint_that_recovers_is_retried(fake):
    fake.fail_next(1, status=503)
    fake.fail_next(1, status=429, retry_after=0.05)
    gen = remote(fake, max_retries=2).generate(MESSAGES, GenerationParams(max_new_tokens=64))
    assert gen.text == REPLY
    assert [r.status for r in fake.chat_requests] == [503, 429, 200]


def test_a_retry_after_beyond_the_budget_fails_at_once(fake):
    fake.fail_next(1, status=429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match="HTTP 429"):
        remote(fake, max_retries=3).generate(MESSAGES, GenerationParams(max_new_tokens=8, timeout_s=5))
    assert time.monotonic() - started < 10.0  # not the 30 s the server asked for
    assert len(fake.chat_requests) == 1


def test_a_wrong_key_is_refused_without_retries_and_without_leaking_the_key(fake):
    wrong = "sk-wrong-secret-value-42"
    with pytest.raises(LLMError) as caught:
        remote(fake, api_key=wrong, max_retries=2).generate(MESSAGES, GenerationParams(max_new_tokens=8))
    assert not isinstance(caught.value, LLMUnavailableError)
    assert "401" in str(caught.value)
    assert wrong not in str(caught.value) and "secret" not in str(caught.value)
    assert len(fake.chat_requests) == 1
    assert fake.chat_requests[0].status == 401


def test_a_slow_endpoint_times_out_within_the_budget_retries_included(fake):
    fake.delay_s = 5
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        remote(fake, max_retries=3).generate(MESSAGES, GenerationParams(max_new_tokens=8, timeout_s=0.5))
    assert time.monotonic() - started < 4.0  # one budget, not one per attempt (4 x 5 s)


def test_a_stream_that_stalls_past_the_budget_times_out(fake):
    fake.chunk_delay_s = 0.2
    llm = remote(fake)
    received = []
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        for item in llm.stream(MESSAGES, GenerationParams(max_new_tokens=64, timeout_s=0.7)):
            received.append(item)
    assert 0 < len(received) < len(pieces_of(REPLY))
    assert time.monotonic() - started < 5.0  # not the ~13 s the whole stream takes


def test_an_unreachable_endpoint_is_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens there
    llm = OpenAICompatibleLLM(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0)
    with pytest.raises(LLMUnavailableError, match="APIConnectionError"):
        llm.generate(MESSAGES, GenerationParams(max_new_tokens=8, timeout_s=5))


def test_remote_token_estimate_is_positive_and_grows_with_the_text():
    llm = OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m")
    short = llm.count_tokens([{"role": "user", "content": "Hi"}])
    longer = llm.count_tokens([{"role": "user", "content": "Hi " * 100}])
    assert 0 < short < longer
    assert llm.count_tokens([{"role": "user", "content": "Hi " * 100}] * 2) > longer


@pytest.mark.slow
def test_remote_token_count_with_the_served_models_tokenizer_is_exact(llm):
    tokenizer = str(Settings().models_path / PACKAGED_MODEL)
    remote_llm = OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m", tokenizer=tokenizer)
    for messages in (SHORT, MESSAGES, [*MESSAGES, {"role": "assistant", "content": REPLY}, *SHORT]):
        assert remote_llm.count_tokens(messages) == llm.count_tokens(messages) > 10


def test_open_llm_builds_the_remote_backend_from_settings(fake, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "finassist.json").write_text(json.dumps({"prompt_version": "v1"}))
    settings = Settings(
        home=tmp_path, llm_backend="openai", llm_base_url=fake.url, llm_model="served-lora", llm_api_key=KEY
    )
    llm = open_llm(settings, adapter=str(adapter), adapter_label="finassist-lora:3")
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.info.model == f"served-lora@{fake.url}"
    assert (llm.info.adapter, llm.info.prompt_version) == ("finassist-lora:3", "v1")
    assert llm.generate(MESSAGES, GenerationParams(max_new_tokens=64)).text == REPLY
    assert fake.chat_requests[0].body["model"] == "served-lora"


# --- the fake itself, as a reusable OpenAI-compatible server (e.g. a teacher model) ----------------


def test_fake_openai_speaks_the_protocol_to_the_official_client():
    def teacher(messages):
        return f"You asked: {messages[-1]['content']}"

    with FakeOpenAI(reply=teacher, api_key=KEY, model="teacher") as server:
        client = openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == ["teacher"]
        completion = client.chat.completions.create(model="teacher", messages=MESSAGES)
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.role == "assistant"
        assert completion.choices[0].message.content == "You asked: How did Voltrix react?"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
        chunks = list(client.chat.completions.create(model="teacher", messages=MESSAGES, stream=True))
        assert all(c.object == "chat.completion.chunk" and c.usage is None for c in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "You asked: How did Voltrix react?"
        assert chunks[-1].choices[0].finish_reason == "stop"
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="teacher", messages=[])
        with pytest.raises(openai.AuthenticationError) as caught:
            openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0).models.list()
        assert caught.value.body["code"] == "invalid_api_key"


def test_fake_openai_answers_concurrent_clients():
    with FakeOpenAI(reply=lambda messages: messages[-1]["content"].upper(), chunk_delay_s=0.01) as server:
        llm = remote(server, api_key=None)
        results: dict[int, str] = {}

        def ask(i: int) -> None:
            results[i] = llm.generate([{"role": "user", "content": f"q{i} a b"}], GenerationParams()).text

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert results == {i: f"Q{i} A B" for i in range(8)}
