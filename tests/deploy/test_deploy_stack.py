"""stack.yml, loaded by the same code as `docker stack deploy` (docker/cli's loader and its
compose schema) and `docker compose` (compose-go), through deploy/tools/composecheck."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_model import (
    MIGRATION,
    PROCESSING,
    REPO,
    load_stack,
    stack_hosts,
    stack_instances,
    stack_workloads,
)

Model = dict[str, Any]

STATELESS = ("employee-service", "approval-request-service", "notification-service", "gateway")
SINGLE = ("mysql", "mongo", "rabbitmq")
# Services without a healthcheck, and why: the collector image is FROM scratch (no program
# could run a check); the migration is a job that exits when done.
NO_HEALTHCHECK = {"otel-collector", MIGRATION}
PUBLISHED = {"gateway": {8001, 8002, 8003, 8004, 8080}, "grafana": {3000}, "jaeger-ui": {16686}}


def test_swarm_loads_the_stack_without_ignoring_anything(swarm: Model) -> None:
    assert swarm["unsupported"] == [], "docker stack deploy would ignore these keys"
    assert swarm["deprecated"] == {}


def test_compose_loads_the_stack(compose_project: Model, swarm_stack: Model) -> None:
    assert set(compose_project["services"]) == set(swarm_stack["services"])


@pytest.mark.parametrize("mode", ["swarm", "compose"])
def test_the_loaders_refuse_an_invalid_stack(
    tools: dict[str, Path], tmp_path: Path, mode: str
) -> None:
    broken = tmp_path / "stack.yml"
    text = (REPO / "stack.yml").read_text().replace("update_config:", "update_confg:", 1)
    broken.write_text(text)
    with pytest.raises(subprocess.CalledProcessError) as refused:
        load_stack(tools["composecheck"], mode, broken)
    assert "update_confg" in refused.value.stderr


def test_every_long_running_service_has_a_healthcheck_and_a_memory_limit(
    swarm_stack: Model,
) -> None:
    for name, service in swarm_stack["services"].items():
        assert service["deploy"]["resources"]["limits"]["memory"], name
        if name in NO_HEALTHCHECK:
            continue
        check = service.get("healthcheck", {})
        assert check.get("test"), name
        assert not check.get("disable"), name


def test_the_services_run_read_only_without_capabilities(swarm_stack: Model) -> None:
    for name in [*(n for names in stack_instances(swarm_stack).values() for n in names), MIGRATION]:
        service = swarm_stack["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert {"type": "tmpfs", "target": "/tmp"}.items() <= service["volumes"][0].items()


def test_stateless_services_roll_and_stateful_ones_are_replaced(swarm_stack: Model) -> None:
    """Start-first rolling for what may run twice; stop-first, one replica, for what holds
    state in memory or on a volume (two side by side would split or corrupt it): each
    approval-processing replica's share, each store."""
    services = swarm_stack["services"]
    for name in STATELESS:
        deploy = services[name]["deploy"]
        assert deploy["replicas"] >= 2, name
        assert deploy["update_config"]["order"] == "start-first", name
    for name in [*SINGLE, *stack_instances(swarm_stack)[PROCESSING]]:
        deploy = services[name]["deploy"]
        assert deploy["replicas"] == 1, name
        assert deploy["update_config"]["order"] == "stop-first", name
    for name, service in services.items():
        if name != MIGRATION:
            assert service["deploy"]["restart_policy"]["condition"] == "any", name


def test_each_approval_processing_replica_is_a_service_with_its_own_index(
    swarm_stack: Model,
) -> None:
    """Replica k of N is the Swarm service approval-processing-service-k with
    APPROVAL_PROCESSING_REPLICA_INDEX k: N services, indexes 0..N-1 each once, every one
    counting N replicas and reaching its peers at approval-processing-service-{index}."""
    names = stack_instances(swarm_stack)[PROCESSING]
    count = len(names)
    assert count > 1
    assert names == [f"{PROCESSING}-{k}" for k in range(count)]
    workloads = stack_workloads(swarm_stack)
    for k, name in enumerate(names):
        env = workloads[name].env
        assert env["APPROVAL_PROCESSING_REPLICA_INDEX"] == str(k), name
        assert env["APPROVAL_PROCESSING_REPLICAS"] == str(count), name
        peers = env["APPROVAL_PROCESSING_PEER_URLS"] or ""
        assert [peers.format(index=i) for i in range(count)] == [
            f"http://{peer}:8000" for peer in names
        ], name


def test_every_approval_processing_replica_answers_to_the_shared_name(swarm_stack: Model) -> None:
    """What prometheus.yml scrapes (approval-processing-service:8000) resolves in Swarm as in
    Kubernetes: a network alias on each replica's service."""
    assert stack_hosts(swarm_stack)[PROCESSING].app == PROCESSING
    for name in stack_instances(swarm_stack)[PROCESSING]:
        aliases = swarm_stack["services"][name]["networks"]["erp"]["aliases"]
        assert aliases == [PROCESSING], name


def test_the_migration_is_a_job_restarted_until_mysql_answers(swarm_stack: Model) -> None:
    job = swarm_stack["services"][MIGRATION]
    assert job["deploy"]["mode"] == "replicated-job"
    assert job["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert job["command"][-2:] == ["upgrade", "head"]
    assert job["healthcheck"] == {"disable": True}


def test_images_are_pinned(swarm_stack: Model) -> None:
    for name, service in swarm_stack["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, image
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
    services = swarm_stack["services"]
    assert services["mysql"]["image"].startswith("mysql:8.")
    assert services["mongo"]["image"].startswith("mongo:7.")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.")
    assert services["rabbitmq"]["image"].endswith("-management")


def test_only_the_gateway_and_the_uis_publish_ports(swarm_stack: Model) -> None:
    published = {
        name: {port["published"] for port in service.get("ports", [])}
        for name, service in swarm_stack["services"].items()
        if service.get("ports")
    }
    assert published == PUBLISHED


def test_everything_shares_one_overlay_network(swarm_stack: Model) -> None:
    assert list(swarm_stack["networks"]) == ["erp"]
    assert swarm_stack["networks"]["erp"]["driver"] == "overlay"
    for name, service in swarm_stack["services"].items():
        assert list(service["networks"]) == ["erp"], name


def test_no_password_is_written_in_the_stack(swarm_stack: Model) -> None:
    """Passwords only as Swarm secrets: no variable holds one, URLs with credentials come
    from secret files, and the stores read theirs through *_FILE variables."""
    for name, workload in stack_workloads(swarm_stack).items():
        for variable, value in workload.env.items():
            if value is None:
                continue
            assert "PASSWORD" not in variable or variable.endswith("_FILE"), (name, variable)
            assert "@" not in value, (name, variable)


def test_the_secret_files_are_all_written_by_make_secrets(
    swarm_stack: Model, tmp_path: Path
) -> None:
    env = {**os.environ, "ERP_STACK_SECRETS": str(tmp_path / "secrets")}
    script = REPO / "deploy" / "swarm" / "make-secrets.sh"
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, timeout=60)
    first = {p.name: p.read_text() for p in (tmp_path / "secrets").iterdir()}
    for name, secret in swarm_stack["secrets"].items():
        relative = Path(secret["file"]).name
        assert first.get(relative), f"secret {name}: make-secrets.sh writes no {relative}"
    # Idempotent: a second run keeps the passwords the stores were initialised with.
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, timeout=60)
    assert {p.name: p.read_text() for p in (tmp_path / "secrets").iterdir()} == first
    password = first["mysql_password"]
    assert f":{password}@mysql:3306/" in first["employee_database_url"]


def test_every_config_file_exists(swarm_stack: Model) -> None:
    for name, config in swarm_stack["configs"].items():
        assert Path(config["file"]).is_file(), f"config {name}: no {config['file']}"


def test_grafana_gets_every_dashboard_where_its_provider_looks(swarm_stack: Model) -> None:
    grafana_dir = REPO / "observability" / "grafana"
    provider = yaml.safe_load(
        (grafana_dir / "provisioning" / "dashboards" / "dashboards.yaml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    configs = swarm_stack["configs"]
    mounted = {
        Path(configs[c["source"]]["file"]).name: c["target"]
        for c in swarm_stack["services"]["grafana"]["configs"]
    }
    for dashboard in (grafana_dir / "dashboards").glob("*.json"):
        assert mounted.get(dashboard.name) == f"{path}/{dashboard.name}", dashboard.name


def test_prometheus_gets_its_rule_files_beside_its_configuration(swarm_stack: Model) -> None:
    mounts = {c["target"] for c in swarm_stack["services"]["prometheus"]["configs"]}
    config_path = "/etc/prometheus/prometheus.yml"
    assert config_path in mounts
    config = yaml.safe_load((REPO / "observability" / "prometheus" / "prometheus.yml").read_text())
    for rule_file in config.get("rule_files", []):
        assert f"/etc/prometheus/{rule_file}" in mounts
    for job in config["scrape_configs"]:
        for target in (t for s in job["static_configs"] for t in s["targets"]):
            assert target.split(":")[0] in stack_hosts(swarm_stack), target


def test_the_entrypoint_exports_secret_files_as_variables(tmp_path: Path) -> None:
    """What lets the settings classes read Swarm secrets: /run/secrets/<name> becomes
    <NAME>, unless already set; files that cannot name a variable are skipped."""
    (tmp_path / "employee_database_url").write_text("mysql+asyncmy://erp:s3cret@mysql/erp\n")
    (tmp_path / "erp_auth_secret").write_text("from-file")
    (tmp_path / "20-credentials.conf").write_text("default_pass = x")
    env = {
        "PATH": os.environ["PATH"],
        "ERP_SECRETS_DIR": str(tmp_path),
        "ERP_AUTH_SECRET": "from-env",
    }
    done = subprocess.run(
        ["sh", str(REPO / "deploy" / "docker" / "entrypoint.sh"), "env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    exported = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert exported["EMPLOYEE_DATABASE_URL"] == "mysql+asyncmy://erp:s3cret@mysql/erp"
    assert exported["ERP_AUTH_SECRET"] == "from-env"
    assert not any(name.startswith("20") for name in exported)
