"""The one configuration object: every knob of every pipeline, from `FINASSIST_*` env vars or `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
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
    batch_articles: int = Field(
        256, ge=1, le=10_000, description="Articles a source hands over per batch (the embedder's micro-batch)."
    )
    max_article_bytes: int = Field(2_000_000, ge=1_000, description="Larger raw records are quarantined.")
    epoch_seconds: float = Field(2.0, gt=0, description="Bytewax epoch: how often resume state is snapshotted.")

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
