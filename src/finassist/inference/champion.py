"""Hot swap of the served adapter: serving follows the registry's alias (`@champion` by default) while it answers.

A check resolves the alias. When it names another version than the one served, the new adapter is loaded beside the
old one (requests keep being answered meanwhile), then new requests go to it; requests already under way finish on
the version they started with, and the old model is closed when the last of them ends. A version that fails to load
leaves the old one serving and is reported (`/readyz` → `champion`, the log). Checks run every
FINASSIST_CHAMPION_POLL_S and on `POST /v1/admin/reload`; a rollback is `finassist model promote OLD --force`.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finassist.registry import ModelRef, ModelRegistry, ModelVersion, is_model_uri, registry_exists

if TYPE_CHECKING:
    from finassist.inference.services import Services

log = logging.getLogger(__name__)


@dataclass
class Check:
    """The outcome of one look at the registry."""

    changed: bool
    adapter: str | None  # what serves after the check
    previous: str | None = None
    detail: str = ""
    failed: bool = False  # the registry could not be read or the new version not loaded

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "adapter": self.adapter, "previous": self.previous, "detail": self.detail}


def follows_alias(spec: str) -> bool:
    """Only an alias can move; a pinned version (models:/NAME/3), a folder or '' is served as configured."""
    return is_model_uri(spec) and ModelRef.parse(spec).alias is not None


class ChampionWatcher:
    """Looks at the registry and swaps the served model when the alias moved; one check at a time."""

    def __init__(self, services: Services, poll_s: float):
        # Weakly: the polling thread must not keep a discarded app's models alive.
        self._services = weakref.ref(services)
        self.poll_s = poll_s
        self.spec = services.settings.adapter_spec
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.last_check: float | None = None
        self.error: str | None = None  # the last check's failure (the old version keeps serving)
        self._registry: ModelRegistry | None = None

    @property
    def services(self) -> Services:
        services = self._services()
        if services is None:
            raise RuntimeError("the services this watcher served are gone")
        return services

    def describe(self) -> dict[str, Any]:
        return {
            "follows": self.spec if follows_alias(self.spec) else None,
            "poll_s": self.poll_s if follows_alias(self.spec) else None,
            "last_check_age_s": None if self.last_check is None else round(time.monotonic() - self.last_check, 1),
            "error": self.error,
        }

    def check(self) -> Check:
        """Resolve the alias now; load and swap to its version when it is not the one served."""
        from finassist.llm import open_llm

        served = self.services.llm.info.adapter if self.services.llm else None
        if not follows_alias(self.spec):
            return Check(False, served, detail=f"FINASSIST_LLM_ADAPTER={self.spec!r} is pinned: nothing to follow")
        with self._lock:
            served = self.services.llm.info.adapter if self.services.llm else None
            try:
                version = self._champion()
                label = version.label if version else None
                if label == served:
                    self.error = None
                    return Check(False, served, detail=f"{self.spec} is {served or 'not set'}: already served")
                log.info("%s moved: %s -> %s; loading it beside the served model", self.spec, served, label)
                started = time.monotonic()
                path = self._registry.download(version) if version else None  # type: ignore[union-attr]
                llm = open_llm(self.services.settings, adapter=str(path) if path else "", adapter_label=label)
            except Exception as exc:
                self.error = self.services.redact(exc)
                self.services.metrics.champion_swaps.labels("failed").inc()
                log.error("could not load the new %s, %s keeps serving: %s", self.spec, served, self.error)
                return Check(False, served, detail=f"load failed, {served or 'the base model'} keeps serving: "
                                                   f"{self.error}", failed=True)
            finally:
                self.last_check = time.monotonic()
            self.services.swap(llm)
            self.error = None
            self.services.metrics.champion_swaps.labels("swapped").inc()
            detail = f"now serving {label or 'the base model'} (loaded in {time.monotonic() - started:.1f} s)"
            log.info("%s: %s; requests under way finish on %s", self.spec, detail, served or "the base model")
            return Check(True, label, served, detail)

    def _champion(self) -> ModelVersion | None:
        """The version the alias names now (None: no registry yet, or the alias is not set)."""
        settings = self.services.settings
        if self._registry is None:
            if not registry_exists(settings):
                return None
            self._registry = ModelRegistry(settings)
        ref = ModelRef.parse(self.spec)
        return self._registry.by_alias(ref.name, ref.alias)  # type: ignore[arg-type]

    def run(self) -> None:
        """Check every `poll_s` until stopped (a daemon thread beside the API)."""
        while not self._stop.wait(self.poll_s) and self._services() is not None:
            try:
                self.check()
            except Exception:  # a watcher that dies would silently stop following the registry
                log.exception("champion check failed")

    def stop(self) -> None:
        self._stop.set()
