"""One service, one description: its name, port, health paths, image, command and
environment agree between the code (settings classes, the ops router, the local stack's
registry in devstack/apps.py), the Dockerfile, stack.yml and every Kubernetes
overlay, and every variable a service must have is set by both deployments.

Which variables must be set (deploy_model.must_be_set): a setting with no default, or a
URL or secret whose default is not None, because those defaults point at 127.0.0.1 or
are development secrets. The list comes from the settings classes themselves
(``model_fields`` and ``env_prefix``), so a setting added later is checked at once.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.apps import ALEMBIC_INI
from devstack.console import CONSOLE_PORT
from services.common.ops import router as ops_router
from tests.deploy.deploy_model import (
    ADDRESSING,
    APPS,
    CONTAINER_PORT,
    MIGRATION,
    OVERLAYS,
    PROCESSING,
    REPO,
    Host,
    Workload,
    built_targets,
    by_kind,
    gateway_upstreams,
    image_of,
    k8s_hosts,
    k8s_workloads,
    pod_spec,
    stack_hosts,
    stack_instances,
    stack_workloads,
    urls_in,
    variables_read,
    variables_read_by_migration,
    workload_docs,
)

Model = dict[str, Any]
Rendered = dict[str, list[dict[str, Any]]]
STANDARD = re.compile(r"OTEL_[A-Z0-9_]+")
MIGRATE_COMMAND = [
    "python",
    "-m",
    "alembic",
    "-c",
    str(ALEMBIC_INI.relative_to(REPO)),
    "upgrade",
    "head",
]


def deployments(swarm_stack: Model, rendered: Rendered) -> dict[str, dict[str, list[Workload]]]:
    """Every deployment's workloads of each service and the migration: 'stack' (one per
    Swarm service running it: several for approval-processing), 'k8s/local' and
    'k8s/production' (the pod template)."""
    stack = stack_workloads(swarm_stack)
    instances = {**stack_instances(swarm_stack), MIGRATION: [MIGRATION]}
    out = {"stack": {app: [stack[name] for name in names] for app, names in instances.items()}}
    for overlay in OVERLAYS:
        workloads = k8s_workloads(rendered[overlay])
        out[f"k8s/{overlay}"] = {name: [workloads[name]] for name in [*APPS, MIGRATION]}
    return out


def test_the_services_serve_the_probed_paths() -> None:
    assert {"/health", "/ready"} <= {route.path for route in ops_router.routes}  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", APPS)
def test_every_deployment_runs_the_service_from_the_one_image(
    swarm_stack: Model, rendered: Rendered, service: str
) -> None:
    """`erp/<service>:<pyproject version>`, the tag deploy/build-images.sh gives the
    Dockerfile target of the same name."""
    assert service in built_targets()
    for where, workloads in deployments(swarm_stack, rendered).items():
        assert workloads[service], f"{where} does not run {service}"
        for workload in workloads[service]:
            assert workload.image == image_of(service), where
            assert workload.command is None, f"{where} overrides the image's command"
        (migration,) = workloads[MIGRATION]
        assert migration.image == image_of("employee-service"), where
        assert migration.command == MIGRATE_COMMAND, where


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", APPS)
def test_kubernetes_probes_and_ports_agree_with_the_service(
    rendered: Rendered, overlay: str, service: str
) -> None:
    docs = rendered[overlay]
    container = pod_spec(workload_docs(docs)[service])["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": CONTAINER_PORT}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    (port,) = by_kind(docs, "Service")[service]["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (CONTAINER_PORT, "http")


@pytest.mark.parametrize("service", APPS)
def test_the_stack_healthcheck_probes_health_on_the_service_port(
    swarm_stack: Model, service: str
) -> None:
    for name in stack_instances(swarm_stack)[service]:
        test = " ".join(swarm_stack["services"][name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{CONTAINER_PORT}/health" in test, name
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"http://127.0.0.1:{CONTAINER_PORT}/health" in dockerfile


def test_the_gateway_publishes_each_service_on_its_local_port(
    swarm_stack: Model, rendered: Rendered
) -> None:
    """The local port table (devstack/apps.py) holds in every deployment: the
    gateway listens on a service's local port and passes it to <service>:8000; the console's
    port (the local console's, 8080) is published beside them."""
    config = (REPO / "deploy" / "gateway" / "nginx.conf").read_text()
    servers = re.findall(r"listen (\d+);(.*?)\n    }", config, re.S)
    routes = {
        int(port): set(re.findall(r"proxy_pass http://([a-z-]+);", body)) for port, body in servers
    }
    upstreams = gateway_upstreams()
    expected_ports = {service.port for service in APPS.values()} | {CONSOLE_PORT}
    published = {p["published"]: p["target"] for p in swarm_stack["services"]["gateway"]["ports"]}
    assert published == {port: port for port in expected_ports}
    for overlay in OVERLAYS:
        service = by_kind(rendered[overlay], "Service")["gateway"]
        container = pod_spec(by_kind(rendered[overlay], "Deployment")["gateway"])["containers"][0]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        ports = {p["port"]: named[p["targetPort"]] for p in service["spec"]["ports"]}
        assert ports == {port: port for port in expected_ports}, overlay
    for name, service in APPS.items():
        assert routes[service.port] == {name}, f"port {service.port} must reach {name}"
        if name != PROCESSING:
            assert upstreams[name] == [f"{name}:{CONTAINER_PORT}"]


def test_the_gateway_reaches_every_approval_processing_replica_by_its_own_name(
    swarm_stack: Model, rendered: Rendered
) -> None:
    """Replica k of N answers as approval-processing-service-k in both deployments (a Swarm
    service, a Kubernetes Service for pod k), and the gateway lists each, so the count is
    the same in stack.yml, every overlay and deploy/gateway/nginx.conf."""
    listed = gateway_upstreams()[PROCESSING]
    count = len(listed)
    assert count > 1
    assert listed == [f"{PROCESSING}-{k}:{CONTAINER_PORT}" for k in range(count)]
    where_hosts = {"stack": stack_hosts(swarm_stack)}
    where_hosts |= {f"k8s/{o}": k8s_hosts(rendered[o]) for o in OVERLAYS}
    for where, hosts in where_hosts.items():
        for k, server in enumerate(listed):
            host, _, port = server.partition(":")
            assert hosts[host] == Host(PROCESSING, frozenset({int(port)}), k), (where, server)
    for where, workloads in deployments(swarm_stack, rendered).items():
        counts = {w.env["APPROVAL_PROCESSING_REPLICAS"] for w in workloads[PROCESSING]}
        assert counts == {str(count)}, where


def test_the_gateway_does_not_route_internal_paths() -> None:
    config = (REPO / "deploy" / "gateway" / "nginx.conf").read_text()
    servers = dict(re.findall(r"listen (\d+);(.*?)\n    }", config, re.S))
    refused = {
        port: set(re.findall(r"location \^~ (\S+) \{\s*return 404;", body))
        for port, body in servers.items()
    }
    assert refused[str(APPS["employee-service"].port)] >= {"/leaves/internal", "/metrics"}
    assert refused[str(APPS["approval-request-service"].port)] >= {
        "/approvals/internal",
        "/metrics",
    }
    assert refused[str(APPS["approval-processing-service"].port)] >= {"/metrics"}
    assert refused[str(APPS["notification-service"].port)] >= {"/notify", "/metrics"}


def test_both_deployments_pin_the_same_image_versions(
    swarm_stack: Model, rendered: Rendered
) -> None:
    stack_images = {
        s["image"].rpartition(":")[0]: s["image"] for s in swarm_stack["services"].values()
    }
    for overlay in OVERLAYS:
        for name, doc in workload_docs(rendered[overlay]).items():
            for container in pod_spec(doc)["containers"]:
                repository = container["image"].rpartition(":")[0]
                assert container["image"] == stack_images[repository], (overlay, name)


def _reads(name: str) -> dict[str, Any]:
    return (
        variables_read_by_migration() if name == MIGRATION else variables_read(APPS[name].package)
    )


@pytest.mark.parametrize("service", [*APPS, MIGRATION])
def test_every_required_variable_is_set_in_both_deployments(
    swarm_stack: Model, rendered: Rendered, service: str
) -> None:
    required = {name for name, variable in _reads(service).items() if variable.required}
    assert required, f"{service} reads no variable that must be set: the rule found nothing"
    for where, workloads in deployments(swarm_stack, rendered).items():
        for workload in workloads[service]:
            missing = required - set(workload.env)
            assert not missing, f"{where} does not set {sorted(missing)} for {service}"


@pytest.mark.parametrize("service", [*APPS, MIGRATION])
def test_every_variable_set_is_one_the_service_reads(
    swarm_stack: Model, rendered: Rendered, service: str
) -> None:
    """Catches a misspelt or stale variable, which the settings would silently ignore."""
    reads = _reads(service)
    for where, workloads in deployments(swarm_stack, rendered).items():
        for workload in workloads[service]:
            for name in workload.env:
                known = name in reads or STANDARD.fullmatch(name) or name in workload.helpers
                assert known, f"{where} sets {name} for {service}, which reads no such variable"


@pytest.mark.parametrize("service", [*APPS, MIGRATION])
def test_every_deployment_but_the_local_cluster_runs_in_production_mode(
    swarm_stack: Model, rendered: Rendered, service: str
) -> None:
    """The local overlay commits its credentials, so it runs in development mode
    (test_deploy_k8s.py); production refuses a committed auth secret."""
    environment = [name for name in _reads(service) if name.endswith("_ENVIRONMENT")]
    assert environment
    for where, workloads in deployments(swarm_stack, rendered).items():
        mode = "development" if where == "k8s/local" else "production"
        for workload in workloads[service]:
            env = workload.env
            assert [env.get(name) for name in environment] == [mode] * len(environment), where


@pytest.mark.parametrize("service", APPS)
def test_plain_values_agree_between_the_stack_and_kubernetes(
    swarm_stack: Model, rendered: Rendered, service: str
) -> None:
    every = deployments(swarm_stack, rendered)
    for stack_workload in every["stack"][service]:
        stack_env = {n: v for n, v in stack_workload.env.items() if n not in ADDRESSING}
        assert stack_env["OTEL_SERVICE_NAME"] == service
        for where, workloads in every.items():
            for workload in workloads[service]:
                env = {n: v for n, v in workload.env.items() if n not in ADDRESSING}
                for name, value in stack_env.items():
                    if name.endswith("_ENVIRONMENT"):
                        continue  # the mode differs on purpose (the test above)
                    if value is not None and name in env and env[name] is not None:
                        assert env[name] == value, (
                            f"{where}: {name}={env[name]!r}, stack.yml: {value!r}"
                        )
                assert {n for n, v in env.items() if v is not None and n in stack_env} >= {
                    n for n, v in stack_env.items() if v is not None
                }, where


def _shape(url: str) -> str:
    """A connection URL without its password."""
    return re.sub(r":[^:@/]+@", ":***@", url)


def test_connection_urls_have_the_same_shape_in_both_deployments(
    rendered: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """stack.yml takes them from secret files deploy/swarm/make-secrets.sh writes,
    Kubernetes builds them from Secret values: both must name the same host, port,
    user and database."""
    secrets = tmp_path_factory.mktemp("secrets")
    env = {**os.environ, "ERP_STACK_SECRETS": str(secrets)}
    subprocess.run(
        ["bash", str(REPO / "deploy" / "swarm" / "make-secrets.sh")],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    for overlay in OVERLAYS:
        for workload in k8s_workloads(rendered[overlay]).values():
            for name, value in workload.env.items():
                secret_file = secrets / name.lower()
                if value and secret_file.exists():
                    assert _shape(value) == _shape(secret_file.read_text()), (overlay, name)


def test_every_service_url_points_at_a_service_of_the_same_deployment(
    swarm_stack: Model, rendered: Rendered
) -> None:
    """A name that deployment resolves (a stack service or network alias; a Kubernetes
    Service or a StatefulSet pod's name under its headless Service), on a port it exposes. A
    URL template with {index} must reach replica k of the workload itself for each k."""
    for where, workloads in deployments(swarm_stack, rendered).items():
        if where == "stack":
            hosts = stack_hosts(swarm_stack)
        else:
            hosts = k8s_hosts(rendered[where.removeprefix("k8s/")])
        for service, instances in workloads.items():
            for workload in instances:
                for name, value, replica in urls_in(workload.env):
                    url = urlsplit(value)
                    host = hosts.get(url.hostname or "")
                    assert host is not None, f"{where}: {service} {name} -> {value}"
                    assert host.ports is None or url.port in host.ports, (
                        f"{where}: {service} {name} -> {value}"
                    )
                    if replica is not None:
                        assert (host.app, host.replica) == (service, replica), (
                            f"{where}: {service} {name} -> {value} is not its replica {replica}"
                        )
