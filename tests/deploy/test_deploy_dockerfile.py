"""The service images: the Dockerfile lints clean with hadolint and keeps the rules the
images rely on (one per service, non-root, locked dependencies, health check), the lock
files cover their dependency groups, and the build context holds nothing local."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.deploy_model import APPS, CONTAINER_PORT, REPO, group_of

DOCKERFILE = REPO / "Dockerfile"
LOCKS = REPO / "deploy" / "requirements"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages by name, each with its instructions (line
    continuations joined, comments dropped)."""
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    logical = re.sub(r"\\\n", " ", "\n".join(kept))
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in filter(None, (raw.strip() for raw in logical.splitlines())):
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), " ".join(rest.split())
        if instruction == "FROM":
            base, _, name = rest.partition(" AS ")
            current = stages[name] = Stage(base, name)
        elif current is None and instruction == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif current is not None:
            current.instructions.append((instruction, rest))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and the stages it builds on, nearest first."""
    out = [stages[name]]
    while out[-1].base in stages:
        out.append(stages[out[-1].base])
    return out


def test_hadolint_finds_nothing(tools: dict[str, Path]) -> None:
    done = subprocess.run(
        [str(tools["hadolint"]), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(done.stdout or "[]")
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert done.returncode == 0, done.stderr


def test_hadolint_is_not_vacuous(tools: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install fastapi\n")
    done = subprocess.run(
        [str(tools["hadolint"]), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "DL3006" in done.stdout


def test_the_entrypoint_and_every_script_pass_shellcheck(tools: dict[str, Path]) -> None:
    scripts = [
        REPO / "deploy" / "docker" / "entrypoint.sh",
        *sorted((REPO / "deploy").glob("*/*.sh")),
        *sorted((REPO / "deploy").glob("*.sh")),
        *sorted((REPO / "scripts").glob("*.sh")),
        REPO / ".ci" / "run",
    ]
    done = subprocess.run(
        [str(tools["shellcheck"]), *map(str, dict.fromkeys(scripts))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("service", APPS)
def test_each_service_image_is_a_target_built_on_python_312_slim(dockerfile, service: str) -> None:
    args, stages = dockerfile
    root = chain(stages, service)[-1]
    base = root.base.replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
    assert base == "python:3.12-slim"


@pytest.mark.parametrize("service", APPS)
def test_each_image_runs_one_uvicorn_worker_as_an_unprivileged_user(
    dockerfile, service: str
) -> None:
    _, stages = dockerfile
    stage = stages[service]
    (user,) = stage.all("USER")
    uid, _, gid = user.partition(":")
    assert int(uid) > 0
    assert int(gid) > 0
    assert stage.instructions[-1][0] == "CMD", "CMD comes last, after USER"
    command = json.loads(stage.all("CMD")[0])
    package = APPS[service].package
    assert command[:3] == ["uvicorn", "--factory", f"services.{package}.app:create_app"]
    assert command[command.index("--port") + 1] == str(CONTAINER_PORT)
    assert "--workers" not in command, "one worker per container: scale by replicas"
    server_args = list(APPS[service].server_args)
    assert not server_args or command[-len(server_args) :] == server_args, (
        "the image runs uvicorn with the options the local stack uses"
    )


@pytest.mark.parametrize("service", APPS)
def test_each_image_installs_only_its_group_from_its_hash_locked_file(
    dockerfile, service: str
) -> None:
    _, stages = dockerfile
    (copy_venv,) = [c for c in stages[service].all("COPY") if c.startswith("--from=")]
    deps = stages[copy_venv.split()[0].removeprefix("--from=")]
    group = group_of(APPS[service])
    assert deps.all("COPY") == [f"deploy/requirements/{group}.txt /tmp/requirements.txt"]
    (install,) = deps.all("RUN")
    for flag in (
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "-r /tmp/requirements.txt",
    ):
        assert flag in install, flag
    copied = [c.split()[0] for c in stages[service].all("COPY") if not c.startswith("--from=")]
    assert copied == [f"services/{APPS[service].package}/"], "only its own package"


def test_the_shared_runtime_stage_holds_the_entrypoint_and_the_health_check(dockerfile) -> None:
    _, stages = dockerfile
    runtime = stages["runtime"]
    assert json.loads(runtime.all("ENTRYPOINT")[0]) == ["erp-entrypoint"]
    assert runtime.all("EXPOSE") == [str(CONTAINER_PORT)]
    (check,) = runtime.all("HEALTHCHECK")
    assert f"http://127.0.0.1:{CONTAINER_PORT}/health" in check
    copied = [c.split()[-2] for c in runtime.all("COPY")]
    assert copied == ["deploy/docker/entrypoint.sh", "services/__init__.py", "services/common/"]


def _pyproject_requirements(group: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"][group]
    ]


def _lock(group: str) -> dict[str, tuple[str, int]]:
    """name -> (pinned version, number of hashes) of a lock file."""
    text = (LOCKS / f"{group}.txt").read_text()
    pins: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            pins[canonicalize_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return pins


@pytest.mark.parametrize("group", sorted(group_of(s) for s in APPS.values()))
def test_each_lock_file_pins_every_dependency_of_its_group(group: str) -> None:
    """Regenerate with scripts/lock-deploy-requirements.sh when this fails."""
    pins = _lock(group)
    assert pins
    assert all(hashes for _, hashes in pins.values()), "every pin carries hashes"
    environment = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux"}
    for requirement in _pyproject_requirements(group):
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{group}.txt lacks {requirement}"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{group}.txt pins {name}=={pins[name][0]}, pyproject wants {requirement}"
        )


def test_every_dependency_group_has_a_lock_file() -> None:
    groups = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    service_groups = {group_of(s) for s in APPS.values()}
    assert service_groups <= groups
    assert {p.stem for p in LOCKS.glob("*.txt")} == service_groups


def _dockerignore() -> list[tuple[bool, str]]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [(rule.startswith("!"), rule.lstrip("!").rstrip("/")) for rule in rules]


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `**/` spans any directories, `*` one name."""
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            token, re.escape(token)
        )
    return re.compile(out)


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    included = True
    for negated, glob in _dockerignore():
        pattern = _pattern(glob)
        if any(pattern.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            included = negated
    return included


def test_the_build_context_holds_what_the_images_copy_and_nothing_local(dockerfile) -> None:
    _, stages = dockerfile
    sources = {
        c.split()[-2].rstrip("/")
        for stage in stages.values()
        for c in stage.all("COPY")
        if not c.startswith("--from=")
    }
    for source in sources:
        for file in [p for p in REPO.glob(source) if p.is_file()] + [
            p for p in REPO.glob(source + "/**/*.py")
        ]:
            assert in_build_context(str(file.relative_to(REPO))), file
    for local in (
        ".venv/bin/python",
        ".run/logs/x.log",
        "deploy/secrets/mysql_password",
        "tests/conftest.py",
        "devstack/cli.py",
        "services/common/__pycache__/x.pyc",
        ".git/config",
    ):
        assert not in_build_context(local), local
