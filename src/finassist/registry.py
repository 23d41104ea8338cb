"""The model registry adapter (MLflow's): where training hands adapters to serving.

A trained LoRA adapter (the `adapter/` artifact folder of its training run, with `finassist.json`) becomes a version
of a registered model (`financial-assistant` by default). The alias `champion` marks the version serving loads:
`FINASSIST_LLM_ADAPTER=models:/financial-assistant@champion` is the default, a pinned `models:/NAME/VERSION` or a
local folder work too. A served version is downloaded once under FINASSIST_HOME/registry.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finassist.config import Settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[A-Za-z0-9_\-]+)|/(?P<version>[0-9]+))$")


class RegistryError(RuntimeError):
    """The registry cannot give what was asked (unknown model or version, unreachable server)."""


@dataclass(frozen=True)
class ModelRef:
    """`models:/NAME@ALIAS` or `models:/NAME/VERSION`."""

    name: str
    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef:
        match = _URI.match(uri.strip())
        if not match:
            raise RegistryError(f"{uri!r} is not a model URI (models:/NAME@ALIAS or models:/NAME/VERSION)")
        version = match["version"]
        return cls(match["name"], match["alias"], int(version) if version else None)

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def is_model_uri(value: str) -> bool:
    return value.strip().startswith("models:/")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    source: str
    created_at: datetime
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "source": self.source,
                "created_at": self.created_at.isoformat(), "aliases": list(self.aliases), "tags": self.tags}


def _version(mv) -> ModelVersion:
    return ModelVersion(
        name=mv.name, version=int(mv.version), run_id=mv.run_id or None, source=mv.source,
        created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
        aliases=tuple(sorted(mv.aliases or ())), tags=dict(mv.tags or {}),
    )


class ModelRegistry:
    """Register adapters, move aliases, list versions and fetch one for serving."""

    def __init__(self, settings: Settings) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        self.settings = settings
        self._error = MlflowException
        self.client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)

    # --- reading -----------------------------------------------------------------------------------
    def get(self, name: str, version: int) -> ModelVersion:
        try:
            return _version(self.client.get_model_version(name, str(version)))
        except self._error as exc:
            raise RegistryError(f"no version {version} of model {name!r} in the registry") from exc

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version carrying `alias`; None when the model or the alias does not exist (yet)."""
        try:
            return _version(self.client.get_model_version_by_alias(name, alias))
        except self._error as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise RegistryError(f"registry lookup of {name}@{alias} failed: {exc}") from exc

    def resolve(self, ref: ModelRef) -> ModelVersion | None:
        return self.by_alias(ref.name, ref.alias) if ref.alias else self.get(ref.name, ref.version or 0)

    def versions(self, name: str) -> list[ModelVersion]:
        """All versions of `name`, newest first ([] when it is not registered)."""
        found = self.client.search_model_versions(f"name = '{_quote(name)}'")
        if not found:
            return []
        aliases: dict[int, list[str]] = {}  # search results carry no aliases; the registered model does
        for alias, number in (self.client.get_registered_model(name).aliases or {}).items():
            aliases.setdefault(int(number), []).append(alias)
        versions = [replace(_version(mv), aliases=tuple(sorted(aliases.get(int(mv.version), ())))) for mv in found]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    # --- writing -----------------------------------------------------------------------------------
    def register(self, name: str, run_id: str, artifact_path: str = "adapter",
                 tags: dict[str, Any] | None = None) -> tuple[ModelVersion, bool]:
        """The run's adapter as a new version of `name`; registering the same run again returns its version.

        Returns (version, created)."""
        for existing in self.client.search_model_versions(f"name = '{_quote(name)}' and run_id = '{_quote(run_id)}'"):
            return _version(existing), False
        try:
            run = self.client.get_run(run_id)
        except self._error as exc:
            raise RegistryError(f"no training run {run_id} in the tracking store") from exc
        try:
            self.client.get_registered_model(name)
        except self._error:
            self.client.create_registered_model(name, description="finassist LoRA adapters (see each version's tags)")
        mv = self.client.create_model_version(
            name, source=f"{run.info.artifact_uri}/{artifact_path}", run_id=run_id,
            tags={k: str(v) for k, v in (tags or {}).items()},
        )
        return _version(mv), True

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def set_tags(self, name: str, version: int, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, str(value))

    # --- serving -----------------------------------------------------------------------------------
    def download(self, version: ModelVersion) -> Path:
        """A local copy of the version's adapter folder (downloaded once; versions are immutable)."""
        import mlflow

        target = self.settings.home / "registry" / version.name / str(version.version)
        if (target / "adapter_config.json").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version.version}-", dir=target.parent))
        try:
            mlflow.set_tracking_uri(self.settings.tracking_uri)
            fetched = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(staging)))
            if not (fetched / "adapter_config.json").is_file():
                raise RegistryError(f"{version.label} ({version.source}) holds no LoRA adapter (adapter_config.json)")
            try:
                fetched.rename(target)
            except OSError:  # another process got there first
                if not (target / "adapter_config.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def _quote(value: str) -> str:
    return value.replace("'", "''")


def registry_exists(settings: Settings) -> bool:
    """False only for the embedded default before anything was tracked (no need to create the database then)."""
    if settings.mlflow_uri:
        return True
    return (settings.home / "mlflow.db").is_file()


def resolve_adapter(settings: Settings, spec: str) -> tuple[Path | None, str | None]:
    """The local adapter folder and its label for an adapter setting: '' (base model), a folder, or a model URI.

    An alias with no version behind it (nothing trained and promoted yet) falls back to the base model with a log
    line; an explicit version that does not exist is an error."""
    spec = spec.strip()
    if not spec:
        return None, None
    if not is_model_uri(spec):
        return Path(spec), None
    ref = ModelRef.parse(spec)
    if ref.alias and not registry_exists(settings):
        registry, version = None, None
    else:
        registry = ModelRegistry(settings)
        version = registry.resolve(ref)
    if registry is None or version is None:
        log.warning("no model version is %s in the registry yet: serving the base model without an adapter "
                    "(train, evaluate and `finassist model register --promote` to change that)", ref)
        return None, None
    path = registry.download(version)
    log.info("serving %s (%s) from %s", ref, version.label, path)
    return path, version.label
