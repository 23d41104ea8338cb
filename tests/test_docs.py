"""The README tells the truth about configuration and commands."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from finassist.cli import app
from finassist.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _documented_variables() -> set[str]:
    """Names in the configuration table's first column; `FINASSIST_X_Y` / `_Z` abbreviates FINASSIST_X_Z or _X_Y_Z."""
    names: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", README, flags=re.M):
        cells = re.findall(r"`([A-Z_0-9]+)`", row)
        if not cells:
            continue
        first = cells[0]
        names.add(first)
        parts = first.split("_")
        for short in cells[1:]:
            if short.startswith("_"):
                names |= {"_".join(parts[:i]) + short for i in range(1, len(parts))}
            else:
                names.add(short)
    return names


def test_every_setting_is_in_the_readme_configuration_table():
    documented = _documented_variables()
    missing = []
    for name, field in Settings.model_fields.items():
        env = {f"FINASSIST_{name.upper()}"}
        alias = field.validation_alias
        if alias is not None:
            env |= {str(choice) for choice in getattr(alias, "choices", [alias])}
        if not env & documented:
            missing.append(name)
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_every_command_in_the_readme_commands_table_exists():
    runner = CliRunner()
    commands = set(re.findall(r"`finassist ([a-z]+(?: [a-z]+)*)", README))
    assert len(commands) >= 15, commands
    for command in sorted(commands):
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, f"finassist {command}: {result.output}"
