"""The house's floors: the three pipelines share the core and meet only through the feature store and the registry.
No pipeline imports another, and the core imports no pipeline; only the CLI (the wiring) imports them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "finassist"
PIPELINES = ("feature", "training", "inference")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def floor_of(path: Path) -> str:
    part = path.relative_to(PACKAGE).parts[0]
    return part if part in (*PIPELINES, "cli") else "core"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_pipeline_or_up_from_the_core(path):
    floor = floor_of(path)
    if floor == "cli":
        return
    allowed = {floor} if floor in PIPELINES else set()
    for module in imported_modules(path):
        parts = module.split(".")
        if parts[0] != "finassist" or len(parts) < 2:
            continue
        target = parts[1]
        if target in (*PIPELINES, "cli"):
            assert target in allowed, f"{path.relative_to(PACKAGE)} ({floor}) imports {module}"
