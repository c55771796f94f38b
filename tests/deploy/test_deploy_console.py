"""The web console in both deployments: the gateway runs the one image that carries the
console's files (the Dockerfile's gateway target, built by deploy/build-images.sh), both
publish its console port, both mount the same /config.json where the gateway config serves
it, and Jaeger runs under the base path the gateway passes /jaeger/ to."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from devstack.console import CONSOLE_PORT, ROUTES
from tests.deploy.deploy_model import OVERLAYS, REPO, VERSION, built_targets, by_kind, pod_spec
from tests.deploy.test_deploy_dockerfile import chain, in_build_context, parse_dockerfile

Model = dict[str, Any]
Rendered = dict[str, list[dict[str, Any]]]

GATEWAY_CONF = REPO / "deploy" / "gateway" / "nginx.conf"
CONSOLE_CONFIG = REPO / "deploy" / "gateway" / "console-config.json"
MOUNTED_AT = "/etc/nginx/console/config.json"
HTML_ROOT = "/usr/share/nginx/html"
JAEGER_BASE_PATH = "/jaeger"
BASE_PATH_FLAG = f"--set=extensions.jaeger_query.base_path={JAEGER_BASE_PATH}"
GATEWAY_IMAGE = f"erp/gateway:{VERSION}"


def console_server() -> str:
    """The body of the gateway config's server on the console's port."""
    servers = dict(re.findall(r"listen (\d+);(.*?)\n    }\n", GATEWAY_CONF.read_text(), re.S))
    return servers[str(CONSOLE_PORT)]


def test_the_console_server_serves_the_image_s_files_and_the_mounted_config() -> None:
    server = console_server()
    assert f"root {HTML_ROOT};" in server
    assert re.search(rf"location = /config.json \{{\s*alias {MOUNTED_AT};", server)
    assert "location = /healthz" in server


def test_the_console_server_passes_the_local_console_s_api_paths_but_development_sign_in() -> None:
    """The same paths as devstack/console.py passes to the same services, /dev/ refused."""
    server = console_server()
    passed = dict(re.findall(r"location \^~ (\S+) \{\s*proxy_pass http://([a-z-]+);", server))
    expected = {
        prefix: f"{package.replace('_', '-')}-service"
        for prefix, package in ROUTES.items()
        if not prefix.startswith("/dev/")
    }
    assert passed == expected
    jaeger = re.search(r"location \^~ /jaeger/ \{(.*?)\n        \}", server, re.S)
    assert jaeger
    assert "proxy_pass http://jaeger;" in jaeger[1]
    refused = set(re.findall(r"location \^~ (\S+) \{\s*return 404;", server))
    assert {"/dev/", "/metrics", "/leaves/internal", "/approvals/internal", "/notify"} <= refused


def test_the_console_config_tells_a_deployment_to_sign_in_with_oidc_and_link_jaeger() -> None:
    config = json.loads(CONSOLE_CONFIG.read_text())
    assert config["signIn"] == "oidc"
    assert {"issuer", "clientId", "scope"} <= set(config["oidc"])
    assert config["traceUi"].startswith(f"{JAEGER_BASE_PATH}/search?")
    assert "{requestId}" in config["traceUi"]


def test_the_gateway_image_is_built_with_the_console_s_files() -> None:
    assert "gateway" in built_targets()
    _, stages = parse_dockerfile((REPO / "Dockerfile").read_text())
    gateway = stages["gateway"]
    assert gateway.base == "${NGINX_IMAGE}"
    copied = [c for c in gateway.all("COPY") if c.startswith("--from=console ")]
    assert copied == [f"--from=console /console/dist/ {HTML_ROOT}/"]
    console = stages["console"]
    assert [stage.name for stage in chain(stages, "console")] == ["console"]
    assert console.all("RUN") == ["npm ci --no-audit --no-fund", "npm run build"]
    for path in ("console/package-lock.json", "console/src/main.tsx", "console/index.html"):
        assert in_build_context(path), path
    for path in ("console/node_modules/preact/package.json", "console/dist/index.html"):
        assert not in_build_context(path), path


def test_the_gateway_image_and_base_images_are_pinned() -> None:
    args, _ = parse_dockerfile((REPO / "Dockerfile").read_text())
    for name in ("NODE_IMAGE", "NGINX_IMAGE"):
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+-alpine", args[name]), args[name]


def test_the_stack_runs_the_gateway_image_with_the_console_config(swarm_stack: Model) -> None:
    gateway = swarm_stack["services"]["gateway"]
    assert gateway["image"] == GATEWAY_IMAGE
    mounted = {c["target"]: c["source"] for c in gateway["configs"]}
    source = swarm_stack["configs"][mounted[MOUNTED_AT]]["file"]
    assert source == str(CONSOLE_CONFIG)
    ports = {p["target"]: p["published"] for p in gateway["ports"]}
    assert ports[CONSOLE_PORT] == CONSOLE_PORT


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_runs_the_gateway_image_with_the_console_config(
    rendered: Rendered, overlay: str
) -> None:
    docs = rendered[overlay]
    spec = pod_spec(by_kind(docs, "Deployment")["gateway"])
    (container,) = spec["containers"]
    assert container["image"] == GATEWAY_IMAGE
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNTED_AT)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    config_map = by_kind(docs, "ConfigMap")[volume["configMap"]["name"]]
    assert json.loads(config_map["data"][mount["subPath"]]) == json.loads(
        CONSOLE_CONFIG.read_text()
    )
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = by_kind(docs, "Service")["gateway"]
    console = [p for p in service["spec"]["ports"] if named[p["targetPort"]] == CONSOLE_PORT]
    assert [p["port"] for p in console] == [CONSOLE_PORT]
    policy = by_kind(docs, "NetworkPolicy")["gateway"]
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert CONSOLE_PORT in admitted


def test_the_production_ingress_sends_a_host_to_the_console_port(rendered: Rendered) -> None:
    ingress = by_kind(rendered["production"], "Ingress")["erp"]
    ports = {
        path["backend"]["service"]["port"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert "console" in ports


def test_jaeger_runs_under_the_base_path_the_gateway_passes_on(
    swarm_stack: Model, rendered: Rendered
) -> None:
    assert swarm_stack["services"]["jaeger"]["command"] == [BASE_PATH_FLAG]
    ci = yaml.safe_load((REPO / "deploy" / "ci" / "jaeger.yaml").read_text())
    assert ci["extensions"]["jaeger_query"]["base_path"] == JAEGER_BASE_PATH
    for overlay in OVERLAYS:
        (container,) = pod_spec(by_kind(rendered[overlay], "Deployment")["jaeger"])["containers"]
        assert container["args"] == [BASE_PATH_FLAG], overlay
        assert container["readinessProbe"]["httpGet"]["path"] == f"{JAEGER_BASE_PATH}/"
    sources = yaml.safe_load(
        (REPO / "observability/grafana/provisioning/datasources/datasources.yaml").read_text()
    )["datasources"]
    (jaeger,) = [s for s in sources if s["type"] == "jaeger"]
    assert jaeger["url"] == f"http://jaeger:16686{JAEGER_BASE_PATH}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jaeger_admits_the_gateway_on_its_ui_port(rendered: Rendered, overlay: str) -> None:
    policy = by_kind(rendered[overlay], "NetworkPolicy")["jaeger"]
    admitted = [
        port["port"]
        for rule in policy["spec"]["ingress"]
        if {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}} in rule["from"]
        for port in rule["ports"]
    ]
    assert admitted == ["ui"]
