"""The Kubernetes manifests (k8s/), as kustomize renders each overlay: valid against the
Kubernetes schemas, locked down, sized, and shaped by what each service may safely do."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.deploy_model import (
    APPS,
    MIGRATION,
    OVERLAYS,
    PROCESSING,
    REPO,
    by_kind,
    k8s_hosts,
    k8s_workloads,
    pod_spec,
    secret_keys,
    urls_in,
    workload_docs,
)

Rendered = dict[str, list[dict[str, Any]]]

# The oldest Kubernetes release the manifests target, and the newest the validator knows.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
# Any replica serves any request (notification-service: any replica's sockets get every
# notification, D20), so an autoscaler sets the count.
AUTOSCALED = ("employee-service", "approval-request-service", "notification-service")
STORES = ("mysql", "mongo", "rabbitmq")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_validates_against_the_kubernetes_schemas(
    rendered: Rendered, overlay: str
) -> None:
    failures = []
    for doc in rendered[overlay]:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                failures.append(
                    f"{doc['kind']}/{doc['metadata']['name']} ({version}): {path}: {exc.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as exc:
                failures.append(exc.message)
    assert not failures, "\n".join(failures)


def test_the_schema_check_rejects_an_unknown_field(rendered: Rendered) -> None:
    deployment = copy.deepcopy(by_kind(rendered["local"], "Deployment")["employee-service"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lives_in_the_erp_namespace(rendered: Rendered, overlay: str) -> None:
    namespaces = {
        d["metadata"].get("namespace") for d in rendered[overlay] if d["kind"] != "Namespace"
    }
    assert namespaces == {"erp"}
    assert "erp" in by_kind(rendered[overlay], "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(
    rendered: Rendered, overlay: str
) -> None:
    """The namespace enforces "restricted": a pod that does not meet it is refused."""
    namespace = by_kind(rendered[overlay], "Namespace")["erp"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, doc in workload_docs(rendered[overlay]).items():
        spec = pod_spec(doc)
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, name
        assert pod.get("runAsUser", 0) > 0, name
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, name
            assert context.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not context.get("privileged"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_containers_have_a_read_only_root_filesystem(
    rendered: Rendered, overlay: str
) -> None:
    workloads = workload_docs(rendered[overlay])
    for name in [*APPS, MIGRATION, "gateway"]:
        spec = pod_spec(workloads[name])
        container = spec["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name} needs a writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(rendered: Rendered, overlay: str) -> None:
    for name, doc in workload_docs(rendered[overlay]).items():
        for container in pod_spec(doc)["containers"]:
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_where_any_replica_serves_any_request_autoscale_and_roll(
    rendered: Rendered, overlay: str
) -> None:
    docs = rendered[overlay]
    autoscalers = by_kind(docs, "HorizontalPodAutoscaler")
    deployments = by_kind(docs, "Deployment")
    for name in AUTOSCALED:
        autoscaler = autoscalers[name]
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == name
        assert 1 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]
        # The autoscaler owns the replica count; a fixed one would fight it on every apply.
        assert "replicas" not in deployments[name]["spec"], name
        assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert set(autoscalers) == set(AUTOSCALED), "approval-processing has a fixed count"


def _processing(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """approval-processing's StatefulSet and its container."""
    stateful = by_kind(docs, "StatefulSet")[PROCESSING]
    return stateful, pod_spec(stateful)["containers"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_approval_processing_is_a_statefulset_whose_pods_know_their_index(
    rendered: Rendered, overlay: str
) -> None:
    """Replica k is pod approval-processing-service-k: its index comes from the pod's
    ordinal label, its count is the StatefulSet's, and no autoscaler or Deployment runs it
    (a count changed behind its settings' back would leave partitions without an owner)."""
    docs = rendered[overlay]
    stateful, container = _processing(docs)
    assert PROCESSING not in by_kind(docs, "Deployment")
    spec = stateful["spec"]
    env = k8s_workloads(docs)[PROCESSING].env
    assert spec["replicas"] > 1
    assert env["APPROVAL_PROCESSING_REPLICAS"] == str(spec["replicas"])
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    (index,) = [e for e in container["env"] if e["name"] == "APPROVAL_PROCESSING_REPLICA_INDEX"]
    assert index["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_approval_processing_replicas_reach_each_other_through_the_headless_service(
    rendered: Rendered, overlay: str
) -> None:
    """APPROVAL_PROCESSING_PEER_URLS is one {index} template: for each k it names pod k under
    the StatefulSet's headless Service, which publishes a pod before it is ready (a
    rebuilding replica answers its own 503). One ClusterIP Service per pod gives the
    gateway a stable address for each replica (nginx resolves its upstreams once)."""
    docs = rendered[overlay]
    stateful, _ = _processing(docs)
    services = by_kind(docs, "Service")
    headless = services[stateful["spec"]["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert headless["selector"] == {"app.kubernetes.io/name": PROCESSING}
    env = k8s_workloads(docs)[PROCESSING].env
    template = env["APPROVAL_PROCESSING_PEER_URLS"] or ""
    assert "{index}" in template
    count = stateful["spec"]["replicas"]
    peers = [(url, k) for name, url, k in urls_in(env) if name.endswith("PEER_URLS")]
    assert peers == [
        (f"http://{PROCESSING}-{k}.{stateful['spec']['serviceName']}:8000", k) for k in range(count)
    ]
    hosts = k8s_hosts(docs)
    for k in range(count):
        selector = services[f"{PROCESSING}-{k}"]["spec"]["selector"]
        assert selector == {
            "app.kubernetes.io/name": PROCESSING,
            "statefulset.kubernetes.io/pod-name": f"{PROCESSING}-{k}",
        }
        assert hosts[f"{PROCESSING}-{k}"].replica == k
    assert f"{PROCESSING}-{count}" not in services, "a Service for a pod that does not exist"


def _kept_available(budget: dict[str, Any], replicas: int) -> int:
    """How many of `replicas` pods a PodDisruptionBudget keeps through an eviction
    (percentages round up, as the disruption controller does)."""
    for key, keep in (("minAvailable", True), ("maxUnavailable", False)):
        value = budget["spec"].get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = math.ceil(int(value.rstrip("%")) * replicas / 100)
        return value if keep else replicas - value
    raise AssertionError(f"{budget['metadata']['name']} keeps nothing")


def _replica_range(docs: list[dict[str, Any]], name: str) -> range:
    autoscaler = by_kind(docs, "HorizontalPodAutoscaler").get(name)
    if autoscaler:
        return range(autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"] + 1)
    replicas = workload_docs(docs)[name]["spec"]["replicas"]
    return range(replicas, replicas + 1)


def test_production_budgets_keep_a_majority_of_every_service_up(rendered: Rendered) -> None:
    """For every replica count the service may have: more than half stay through a node
    drain, and a drain can still move one (a budget keeping all would block it)."""
    docs = rendered["production"]
    budgets = by_kind(docs, "PodDisruptionBudget")
    for name in APPS:
        for replicas in _replica_range(docs, name):
            kept = _kept_available(budgets[name], replicas)
            assert replicas / 2 < kept < replicas, (name, replicas, kept)


def test_local_budgets_never_block_a_drain_and_keep_approval_processing_majority(
    rendered: Rendered,
) -> None:
    """A local cluster runs one or two of the autoscaled services, where a majority would
    be all of them; approval-processing still runs its full count there."""
    docs = rendered["local"]
    budgets = by_kind(docs, "PodDisruptionBudget")
    for name in APPS:
        for replicas in _replica_range(docs, name):
            kept = _kept_available(budgets[name], replicas)
            assert kept < replicas, (name, replicas, kept)
            if name == PROCESSING:
                assert kept > replicas / 2, (name, replicas, kept)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_workload_has_a_disruption_budget(
    rendered: Rendered, overlay: str
) -> None:
    docs = rendered[overlay]
    budgets = by_kind(docs, "PodDisruptionBudget")
    for name, doc in workload_docs(docs).items():
        if (
            doc["kind"] == "Job"
            or doc["metadata"]["labels"].get("app.kubernetes.io/component") == "observability"
        ):
            continue
        budget = budgets[name]["spec"]
        assert budget["selector"]["matchLabels"] == doc["spec"]["selector"]["matchLabels"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_stores_are_statefulsets_on_persistent_volumes(
    rendered: Rendered, overlay: str
) -> None:
    sets = by_kind(rendered[overlay], "StatefulSet")
    images = {"mysql": "mysql:8.", "mongo": "mongo:7.", "rabbitmq": "rabbitmq:3."}
    for name, image in images.items():
        spec = sets[name]["spec"]
        assert spec["replicas"] == 1
        assert spec["template"]["spec"]["containers"][0]["image"].startswith(image)
        (claim,) = spec["volumeClaimTemplates"]
        mounts = spec["template"]["spec"]["containers"][0]["volumeMounts"]
        assert claim["metadata"]["name"] in {m["name"] for m in mounts}, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_is_a_job_retried_until_it_succeeds(rendered: Rendered, overlay: str) -> None:
    job = by_kind(rendered[overlay], "Job")[MIGRATION]
    assert job["spec"]["backoffLimit"] >= 5
    spec = pod_spec(job)
    assert spec["restartPolicy"] in {"Never", "OnFailure"}
    assert spec["containers"][0]["args"][-2:] == ["upgrade", "head"]


def _allowed_sources(policy: dict[str, Any]) -> set[str]:
    """The app.kubernetes.io/name of every pod a policy lets in ('*' for any source)."""
    sources: set[str] = set()
    for rule in policy["spec"].get("ingress", []):
        if "from" not in rule:
            sources.add("*")
        for peer in rule.get("from", []):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if "namespaceSelector" in peer:
                sources.add("namespace:" + str(peer["namespaceSelector"]))
            elif "app.kubernetes.io/name" in labels:
                sources.add(labels["app.kubernetes.io/name"])
            else:
                sources.add(str(labels))
    return sources


def _callers(rendered_docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Who calls whom, read off the URLs in each workload's environment: the workload a
    host name reaches (a Service's pods, a StatefulSet pod under its headless Service)."""
    hosts = k8s_hosts(rendered_docs)
    callers: dict[str, set[str]] = {}
    for name, workload in k8s_workloads(rendered_docs).items():
        for _, url, _ in urls_in(workload.env):
            callee = hosts[urlsplit(url).hostname or ""].app
            callers.setdefault(callee, set()).add(name)
    return callers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_exactly_the_callers(rendered: Rendered, overlay: str) -> None:
    """Default deny; each service and store lets in only the workloads whose settings point
    at it, plus the gateway (public paths) and Prometheus (/metrics) for the services."""
    docs = rendered[overlay]
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    callers = _callers(docs)
    for name in APPS:
        expected = callers.get(name, set()) | {"gateway", "prometheus"}
        assert _allowed_sources(policies[name]) == expected, name
    for store in STORES:
        assert _allowed_sources(policies[store]) == callers[store], store
    # Internal endpoints, by the spec: who may call them at all.
    assert callers["employee-service"] == {"approval-request-service"}
    assert callers["approval-request-service"] == {"approval-processing-service"}
    assert callers["notification-service"] == {
        "approval-request-service",
        "approval-processing-service",
    }
    # The replicas' own traffic: forwarded /process calls, and each notification replica's
    # stream on RabbitMQ.
    assert callers[PROCESSING] == {PROCESSING}
    assert {PROCESSING, "notification-service"} <= callers["rabbitmq"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_approval_processing_replicas_may_call_each_other_on_the_service_port(
    rendered: Rendered, overlay: str
) -> None:
    policy = by_kind(rendered[overlay], "NetworkPolicy")[PROCESSING]
    container = _processing(rendered[overlay])[1]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    admitted = {
        named.get(port["port"], port["port"])
        for rule in policy["spec"]["ingress"]
        if {"podSelector": {"matchLabels": {"app.kubernetes.io/name": PROCESSING}}} in rule["from"]
        for port in rule["ports"]
    }
    assert admitted == {8000}


def test_only_the_ingress_controller_reaches_the_production_gateway(rendered: Rendered) -> None:
    local = by_kind(rendered["local"], "NetworkPolicy")["gateway"]
    production = by_kind(rendered["production"], "NetworkPolicy")["gateway"]
    assert _allowed_sources(local) == {"*"}
    assert _allowed_sources(production) == {
        "namespace:{'matchLabels': {'kubernetes.io/metadata.name': 'ingress-nginx'}}"
    }
    ingress = by_kind(rendered["production"], "Ingress")["erp"]
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}


def _make_secrets_script() -> dict[str, set[str]]:
    """The Secrets deploy/k8s/make-secrets.sh creates: `create NAME KEY...` lines."""
    text = (REPO / "deploy" / "k8s" / "make-secrets.sh").read_text()
    return {
        line.split()[1]: set(line.split()[2:])
        for line in text.splitlines()
        if re.match(r"create [a-z]", line)
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_reference_is_provided(rendered: Rendered, overlay: str) -> None:
    """Local: the overlay generates each Secret. Production: none is in the repository,
    and deploy/k8s/make-secrets.sh creates each one with every key the pods read."""
    docs = rendered[overlay]
    created = _make_secrets_script()
    for name, doc in workload_docs(docs).items():
        for container in pod_spec(doc)["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if not ref:
                    continue
                if overlay == "local":
                    assert ref["key"] in secret_keys(docs, ref["name"]), (name, ref)
                else:
                    assert ref["key"] in created.get(ref["name"], set()), (name, ref)
    if overlay == "production":
        assert not by_kind(docs, "Secret"), "production Secrets never live in the repository"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_config_map_reference_resolves(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    config_maps = by_kind(docs, "ConfigMap")
    for name, doc in workload_docs(docs).items():
        spec = pod_spec(doc)
        refs = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
        for container in spec["containers"]:
            refs += [
                s["configMapRef"]["name"]
                for s in container.get("envFrom", [])
                if "configMapRef" in s
            ]
        for ref in refs:
            assert ref in config_maps, (name, ref)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_observability_is_provisioned_from_the_repository(rendered: Rendered, overlay: str) -> None:
    """Every dashboard file is in Grafana's ConfigMap, mounted where the provider looks,
    and Prometheus gets its rule files beside its configuration."""
    docs = rendered[overlay]
    config_maps = by_kind(docs, "ConfigMap")
    grafana_dir = REPO / "observability" / "grafana"
    dashboards = next(c for n, c in config_maps.items() if n.startswith("grafana-dashboards-"))
    on_disk = {p.name for p in (grafana_dir / "dashboards").glob("*.json")}
    assert set(dashboards["data"]) == on_disk
    for file in on_disk:
        assert dashboards["data"][file] == (grafana_dir / "dashboards" / file).read_text()
    provider = yaml.safe_load(
        (grafana_dir / "provisioning" / "dashboards" / "dashboards.yaml").read_text()
    )
    grafana = pod_spec(by_kind(docs, "Deployment")["grafana"])["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in grafana["volumeMounts"]}
    assert mounts["dashboards"] == provider["providers"][0]["options"]["path"]

    prometheus = next(c for n, c in config_maps.items() if n.startswith("prometheus-config-"))
    config = yaml.safe_load(prometheus["data"]["prometheus.yml"])
    assert set(config.get("rule_files", [])) <= set(prometheus["data"])
    for target in (
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ):
        host, port = target.split(":")
        service = by_kind(docs, "Service")[host]
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}, target


def test_observability_configuration_files_are_the_repositorys(rendered: Rendered) -> None:
    config_maps = by_kind(rendered["local"], "ConfigMap")
    collector = next(c for n, c in config_maps.items() if n.startswith("otel-collector-config-"))
    source = Path(REPO / "observability" / "otel-collector" / "config.yaml").read_text()
    assert collector["data"]["config.yaml"] == source


@pytest.mark.parametrize(
    ("overlay", "environment"), [("local", "development"), ("production", "production")]
)
def test_only_the_production_overlay_runs_the_services_as_production(
    rendered: Rendered, overlay: str, environment: str
) -> None:
    """The local overlay commits its auth secret: it must not pass for production, where a
    service refuses a committed secret (services.common.auth)."""
    workloads = k8s_workloads(rendered[overlay])
    for service in [*APPS, MIGRATION]:
        env = workloads[service].env
        modes = {name: value for name, value in env.items() if name.endswith("_ENVIRONMENT")}
        assert modes, f"{overlay}: {service} sets no *_ENVIRONMENT"
        assert set(modes.values()) == {environment}, f"{overlay}: {service}: {modes}"
