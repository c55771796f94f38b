"""The deployments as data, for the deploy checks: what each service reads (its settings
classes), and what stack.yml and the rendered Kubernetes manifests give it."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from devstack.apps import APP_SERVICES, AppService

REPO = Path(__file__).resolve().parents[2]
STACK_FILE = REPO / "stack.yml"
OVERLAYS = ("local", "production")
CONTAINER_PORT = 8000
MIGRATION = "employee-migrate"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

APPS: dict[str, AppService] = {service.name: service for service in APP_SERVICES}
# The service whose replicas each hold a share (docs/decisions.md D22): a StatefulSet in
# Kubernetes, one Swarm service per replica in stack.yml (D23).
PROCESSING = "approval-processing-service"
# Which replica a process is, and where its peers answer: values of each deployment (the
# names differ), checked by their own tests rather than compared between deployments.
ADDRESSING = frozenset({"APPROVAL_PROCESSING_REPLICA_INDEX", "APPROVAL_PROCESSING_PEER_URLS"})


def image_of(service: str) -> str:
    """The one image name of a service, in every deployment."""
    return f"erp/{service}:{VERSION}"


def built_targets() -> list[str]:
    """The Dockerfile targets deploy/build-images.sh builds when not told otherwise, each
    tagged erp/<target>:<version>."""
    build = (REPO / "deploy" / "build-images.sh").read_text()
    assert 'image="$prefix/$service:$version"' in build
    assert "for service in $targets; do" in build
    return build.split("targets=${TARGETS:-", 1)[1].split("}", 1)[0].split()


def group_of(service: AppService) -> str:
    """The pyproject optional-dependency group of a service (`approval-request`)."""
    return service.package.replace("_", "-")


def settings_classes(package: str) -> list[type[BaseSettings]]:
    """Every settings class a service process reads: the ones defined in its own package
    and in services.common (the shared ``ERP_AUTH_*`` one, say), found by importing their
    modules, so a class added later is picked up. Bases without an env prefix are skipped
    (their fields arrive through the subclasses)."""
    found: dict[str, type[BaseSettings]] = {}
    for root in (f"services.{package}", "services.common"):
        module = importlib.import_module(root)
        names = [root] + [info.name for info in pkgutil.walk_packages(module.__path__, root + ".")]
        for name in names:
            for obj in vars(importlib.import_module(name)).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, BaseSettings)
                    and obj.__module__ == name
                    and obj.model_config.get("env_prefix")
                ):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def _is_secret(name: str, info: FieldInfo) -> bool:
    annotation = info.annotation
    types = {annotation, *typing.get_args(annotation)}
    return bool(types & {SecretStr, SecretBytes}) or name.endswith(("secret", "password", "token"))


def must_be_set(name: str, info: FieldInfo) -> bool:
    """The rule for "every deployment sets it": a setting with no default, or a URL or a
    secret whose default is not None. Such defaults point at 127.0.0.1 or are development
    secrets: right on a developer's machine, wrong in every deployment. A URL or secret that
    defaults to None switches an optional feature off (``ERP_AUTH_JWKS_URL``), and tuning
    knobs keep their documented defaults; both may be left out."""
    if info.is_required():
        return True
    is_url = name.endswith("url")
    return (is_url or _is_secret(name, info)) and info.default is not None


@dataclass(frozen=True)
class Variable:
    name: str  # EMPLOYEE_DATABASE_URL
    required: bool


def variables_read(package: str) -> dict[str, Variable]:
    """Every environment variable the settings of `package` read, by name."""
    variables: dict[str, Variable] = {}
    for cls in settings_classes(package):
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, info in cls.model_fields.items():
            env = (prefix + name).upper()
            variables[env] = Variable(env, must_be_set(name, info))
    return variables


def variables_read_by_migration() -> dict[str, Variable]:
    """The migration reads only the employee database settings (migrations/env.py)."""
    return {
        name: v for name, v in variables_read("employee").items() if name.startswith("EMPLOYEE_")
    }


def gateway_upstreams() -> dict[str, list[str]]:
    """The servers of each upstream block of the gateway config, in order."""
    config = (REPO / "deploy" / "gateway" / "nginx.conf").read_text()
    blocks = re.findall(r"upstream ([a-z-]+) \{(.*?)\}", config, re.S)
    return {name: re.findall(r"^\s*server (\S+);", body, re.M) for name, body in blocks}


def load_stack(composecheck: Path, mode: str, path: Path = STACK_FILE) -> dict[str, Any]:
    """`path` as `docker stack deploy` (mode "swarm") or `docker compose` ("compose") sees
    it, with the deploy-time variables unset so their defaults apply. Raises
    subprocess.CalledProcessError with the loader's message when the file is invalid."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERP_STACK_")}
    done = subprocess.run(
        [str(composecheck), mode, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


@dataclass
class Workload:
    """What one deployment gives one service: image, command, environment, secrets."""

    image: str
    command: list[str] | None
    env: dict[str, str | None] = field(default_factory=dict)  # None: a secret's value
    helpers: set[str] = field(default_factory=set)  # K8s variables only used in $(...)


def stack_workloads(stack: dict[str, Any]) -> dict[str, Workload]:
    """Each stack service as a Workload; a mounted secret counts as the variable it is
    named after (the image's entry point exports /run/secrets/<name> as <NAME>)."""
    workloads = {}
    for name, service in stack["services"].items():
        env: dict[str, str | None] = dict(service.get("environment") or {})
        for secret in service.get("secrets") or []:
            target = secret.get("target") or secret["source"]
            env[Path(target).name.upper()] = None
        workloads[name] = Workload(service["image"], service.get("command"), env)
    return workloads


_NUMBERED = re.compile(r"(?P<app>[a-z-]+)-(?P<index>\d+)")


def stack_instances(stack: dict[str, Any]) -> dict[str, list[str]]:
    """The stack services that run each of the four services: the one of its name, or one
    per replica named ``<service>-<index>``, in index order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for name in stack["services"]:
        numbered = _NUMBERED.fullmatch(name)
        if name in APPS:
            found.setdefault(name, []).append((-1, name))
        elif numbered and numbered["app"] in APPS:
            found.setdefault(numbered["app"], []).append((int(numbered["index"]), name))
    return {app: [name for _, name in sorted(names)] for app, names in found.items()}


@dataclass(frozen=True)
class Host:
    """What a host name in a URL reaches in one deployment."""

    app: str  # the workload behind it: a stack service's service, a pod's app label
    ports: frozenset[int] | None  # None: not known (any)
    replica: int | None = None  # the one replica it reaches, if it reaches one


def stack_hosts(stack: dict[str, Any]) -> dict[str, Host]:
    """Every name the stack's network resolves: its services and their network aliases."""
    hosts: dict[str, Host] = {}
    for app, names in stack_instances(stack).items():
        for name in names:
            numbered = _NUMBERED.fullmatch(name)
            replica = int(numbered["index"]) if numbered and name not in APPS else None
            hosts[name] = Host(app, frozenset({CONTAINER_PORT}), replica)
    for name, service in stack["services"].items():
        app = next((a for a, names in stack_instances(stack).items() if name in names), name)
        hosts.setdefault(name, Host(app, None))
        for network in (service.get("networks") or {}).values():
            for alias in (network or {}).get("aliases") or []:
                hosts.setdefault(alias, Host(app, hosts[name].ports))
    return hosts


def k8s_hosts(docs: list[dict[str, Any]]) -> dict[str, Host]:
    """Every name the cluster resolves for the rendered manifests: each Service, and each
    StatefulSet pod as ``<pod>.<headless Service>``."""
    hosts: dict[str, Host] = {}
    sets = by_kind(docs, "StatefulSet")
    for name, service in by_kind(docs, "Service").items():
        spec = service["spec"]
        selector = spec.get("selector", {})
        ports = frozenset(p["port"] for p in spec["ports"])
        pod = selector.get("statefulset.kubernetes.io/pod-name")
        replica = int(pod.rpartition("-")[2]) if pod else None
        hosts[name] = Host(selector.get("app.kubernetes.io/name", name), ports, replica)
        if spec.get("clusterIP") != "None":
            continue
        for set_name, stateful in sets.items():
            labels = stateful["spec"]["template"]["metadata"]["labels"]
            if stateful["spec"]["serviceName"] == name and selector.items() <= labels.items():
                for index in range(stateful["spec"]["replicas"]):
                    hosts[f"{set_name}-{index}.{name}"] = Host(hosts[name].app, ports, index)
    return hosts


def urls_in(env: dict[str, str | None]) -> list[tuple[str, str, int | None]]:
    """(variable, URL, replica it must reach) for every URL in an environment; a URL
    template with ``{index}`` is expanded for each replica the same environment counts in
    its ``*_REPLICAS`` variable."""
    replicas = next((int(v) for n, v in env.items() if n.endswith("_REPLICAS") and v), 1)
    found: list[tuple[str, str, int | None]] = []
    for name, value in env.items():
        if not value or "://" not in value:
            continue
        if "{index}" in value:
            found += [(name, value.format(index=i), i) for i in range(replicas)]
        else:
            found += [(name, url.strip(), None) for url in value.split(",")]
    return found


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def workload_docs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments, StatefulSets and Jobs by name."""
    kinds = ("Deployment", "StatefulSet", "Job")
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in kinds}


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def k8s_workloads(docs: list[dict[str, Any]]) -> dict[str, Workload]:
    """Each Deployment/StatefulSet/Job's first container as a Workload: envFrom ConfigMaps
    resolved against the rendered ones, $(VAR) references expanded, secret values None."""
    config_maps = by_kind(docs, "ConfigMap")
    workloads = {}
    for name, doc in workload_docs(docs).items():
        container = pod_spec(doc)["containers"][0]
        env: dict[str, str | None] = {}
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                env.update(config_maps[source["configMapRef"]["name"]].get("data", {}))
            else:
                env.update(dict.fromkeys(secret_keys(docs, source["secretRef"]["name"])))
        helpers: set[str] = set()
        for entry in container.get("env") or []:
            if "value" in entry:
                value = entry["value"]
                for ref in _REFERENCE.findall(value):
                    helpers.add(ref)
                    value = value.replace(f"$({ref})", env.get(ref) or "***")
                env[entry["name"]] = value
            else:
                env[entry["name"]] = None
        # Our images' entry point must stay: stack.yml's `command` is Kubernetes' `args`.
        if container["image"].startswith("erp/"):
            assert "command" not in container, f"{name} replaces the image's entry point"
        command = container.get("command") or container.get("args")
        workloads[name] = Workload(container["image"], command, env, helpers)
    return workloads


def secret_keys(docs: list[dict[str, Any]], name: str) -> set[str]:
    secret = by_kind(docs, "Secret").get(name)
    return set((secret or {}).get("data", {})) | set((secret or {}).get("stringData", {}))


def render(kustomize: Path, overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            str(kustomize),
            "build",
            "--load-restrictor",
            "LoadRestrictionsNone",
            str(REPO / "k8s" / "overlays" / overlay),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
