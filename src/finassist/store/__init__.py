"""The feature store: one adapter port (`VectorStore`), an embedded engine and a Qdrant server backend."""

from __future__ import annotations

import atexit
import threading

from finassist.config import Settings
from finassist.store.base import SearchFilter, SearchMode, StoreBusyError, StoreError, VectorStore, WriteResult

__all__ = [
    "SearchFilter",
    "SearchMode",
    "StoreBusyError",
    "StoreError",
    "VectorStore",
    "WriteResult",
    "close_stores",
    "open_store",
    "search_mode",
]

_LOCK = threading.Lock()
_OPEN: dict[tuple[str, str], VectorStore] = {}


def _store_key(settings: Settings) -> tuple[str, str]:
    where = settings.qdrant_url or str((settings.store_dir / settings.collection).resolve())
    return where, settings.collection


def open_store(settings: Settings) -> VectorStore:
    """The process's one store for these settings: every worker thread and the API share it.

    Embedded (default): a qdrant-edge shard under FINASSIST_HOME. With FINASSIST_QDRANT_URL: a Qdrant server.
    """
    key = _store_key(settings)
    with _LOCK:
        store = _OPEN.get(key)
        if store is None:
            if settings.qdrant_url:
                from qdrant_client import QdrantClient

                from finassist.store.qdrant import QdrantStore

                api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
                # `location`: a URL, or ":memory:" (qdrant-client's local mode, same API: used by the tests)
                client = QdrantClient(location=settings.qdrant_url, api_key=api_key)
                store = QdrantStore(client, settings.collection, settings.qdrant_shards, settings.qdrant_replicas)
            else:
                from finassist.store.edge import EdgeStore

                store = EdgeStore(settings.store_dir / settings.collection)
            _OPEN[key] = store
        return store


def search_mode(settings: Settings) -> SearchMode:
    """The retrieval mode and fusion the settings ask for (FINASSIST_RETRIEVAL_*)."""
    return SearchMode(
        settings.retrieval_mode, settings.retrieval_fusion, settings.retrieval_dense_weight, settings.retrieval_rrf_k
    )


def close_stores() -> None:
    """Flush and close every store this process opened (also run at exit)."""
    with _LOCK:
        for store in _OPEN.values():
            store.close()
        _OPEN.clear()


atexit.register(close_stores)
