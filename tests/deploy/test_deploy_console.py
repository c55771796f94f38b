"""The web console in both deployments: the gateway runs the one image that carries the
console's files (the Dockerfile's gateway target, built by deploy/build-images.sh), both
publish its console port, each mounts its own /config.json where the gateway config serves
it, and no gateway port passes anything to Jaeger (it has no sign-in): the console's trace
links open Jaeger's UI where each deployment exposes it, under its base path (Swarm: on
jaeger-ui's port, behind basic auth)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from devstack.console import CONSOLE_PORT, ROUTES
from tests.deploy.deploy_model import OVERLAYS, REPO, VERSION, built_targets, by_kind, pod_spec
from tests.deploy.test_deploy_dockerfile import chain, in_build_context, parse_dockerfile

Model = dict[str, Any]
Rendered = dict[str, list[dict[str, Any]]]

GATEWAY_CONF = REPO / "deploy" / "gateway" / "nginx.conf"
JAEGER_UI_CONF = REPO / "deploy" / "gateway" / "jaeger-ui.conf"
# Each deployment's /config.json, and where its trace links open Jaeger's UI: Swarm
# publishes jaeger-ui's port (Jaeger behind basic auth) on every node, so the console's own
# host; the local overlay's
# through `kubectl port-forward svc/jaeger 16686`; production's an example host, behind the
# operator's own sign-in.
CONSOLE_CONFIGS = {
    "swarm": REPO / "deploy" / "gateway" / "console-config.json",
    "local": REPO / "k8s" / "overlays" / "local" / "console-config.json",
    "production": REPO / "k8s" / "overlays" / "production" / "console-config.json",
}
JAEGER_UI_PORT = 16686
TRACE_UI_ORIGINS = {
    "swarm": f"http://{{hostname}}:{JAEGER_UI_PORT}",
    "local": f"http://localhost:{JAEGER_UI_PORT}",
    "production": "https://jaeger.example.com",
}
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
    refused = set(re.findall(r"location \^~ (\S+) \{\s*return 404;", server))
    assert {"/dev/", "/metrics", "/leaves/internal", "/approvals/internal", "/notify"} <= refused


def test_no_gateway_port_passes_anything_to_jaeger_which_has_no_sign_in() -> None:
    """Its traces carry request and employee ids and comments. The console's port refuses
    /jaeger/ outright (rather than answer it with index.html)."""
    config = GATEWAY_CONF.read_text()
    assert "jaeger:" not in config
    assert "upstream jaeger" not in config
    passed_to = set(re.findall(r"proxy_pass http://([a-z-]+);", config))
    assert passed_to == {f"{package.replace('_', '-')}-service" for package in set(ROUTES.values())}
    assert re.search(r"location \^~ /jaeger/ \{\s*return 404;\s*\}", console_server())


@pytest.mark.parametrize("deployment", CONSOLE_CONFIGS)
def test_each_console_config_signs_in_with_oidc_and_links_jaeger_where_it_is_exposed(
    deployment: str,
) -> None:
    config = json.loads(CONSOLE_CONFIGS[deployment].read_text())
    assert config["signIn"] == "oidc"
    assert {"issuer", "clientId", "scope"} <= set(config["oidc"])
    trace_ui = config["traceUi"]
    assert trace_ui.startswith(f"{TRACE_UI_ORIGINS[deployment]}{JAEGER_BASE_PATH}/search?")
    query = parse_qs(trace_ui.split("?", 1)[1])
    assert query["service"] == ["approval-request-service"]
    assert json.loads(query["tags"][0]) == {"erp.request_id": "{requestId}"}


def test_swarm_publishes_jaeger_s_ui_only_through_jaeger_ui_on_the_port_its_trace_links_name(
    swarm_stack: Model,
) -> None:
    """Jaeger itself publishes nothing: its one public way in asks for a password."""
    services = swarm_stack["services"]
    assert not services["jaeger"].get("ports")
    ports = {p["target"]: p["published"] for p in services["jaeger-ui"]["ports"]}
    assert ports == {JAEGER_UI_PORT: JAEGER_UI_PORT}


def test_swarm_s_jaeger_ui_runs_the_gateway_image_hardened_with_its_config_and_user_file(
    swarm_stack: Model,
) -> None:
    jaeger_ui = swarm_stack["services"]["jaeger-ui"]
    gateway = swarm_stack["services"]["gateway"]
    assert jaeger_ui["image"] == gateway["image"] == GATEWAY_IMAGE
    assert jaeger_ui["read_only"] is True
    assert jaeger_ui["cap_drop"] == ["ALL"]
    assert jaeger_ui["volumes"] == gateway["volumes"]
    mounted = {c["target"]: c["source"] for c in jaeger_ui["configs"]}
    config = swarm_stack["configs"][mounted["/etc/nginx/nginx.conf"]]
    assert config["file"] == str(JAEGER_UI_CONF)
    assert config["name"] == "erp_jaeger_ui_conf_1"
    assert [s["source"] for s in jaeger_ui["secrets"]] == ["jaeger_ui_htpasswd"]
    assert jaeger_ui["healthcheck"]["test"][-1] == f"http://127.0.0.1:{JAEGER_UI_PORT}/healthz"


def jaeger_ui_locations() -> dict[str, str]:
    """The bodies of jaeger-ui.conf's locations, by their match (`^~ /jaeger/`)."""
    return dict(
        re.findall(r"location ([^{]+?) \{(.*?)\n        \}", JAEGER_UI_CONF.read_text(), re.S)
    )


def test_jaeger_ui_asks_for_the_secret_s_users_before_passing_anything_to_jaeger() -> None:
    """/healthz answers unauthenticated, /jaeger/ (the UI and its API) needs a user of the
    mounted secret and reaches Jaeger without the operator's credentials, anything else is
    refused. tests/deploy/test_deploy_jaeger_ui.py runs it."""
    config = JAEGER_UI_CONF.read_text()
    assert f"listen {JAEGER_UI_PORT};" in config
    assert re.search(rf"upstream jaeger \{{\s*server jaeger:{JAEGER_UI_PORT};", config)
    locations = jaeger_ui_locations()
    assert set(locations) == {"= /healthz", f"^~ {JAEGER_BASE_PATH}/", "/"}
    assert "auth_basic" not in locations["= /healthz"]
    jaeger = locations[f"^~ {JAEGER_BASE_PATH}/"]
    assert re.search(r'auth_basic "[^"]+";', jaeger)
    assert "auth_basic_user_file /run/secrets/jaeger_ui_htpasswd;" in jaeger
    assert "proxy_pass http://jaeger;" in jaeger
    assert 'proxy_set_header Authorization "";' in jaeger
    assert locations["/"].strip() == "return 404;"
    assert config.count("proxy_pass") == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_jaeger_serves_its_ui_on_the_port_the_local_trace_links_name(
    rendered: Rendered, overlay: str
) -> None:
    """The local overlay's links assume `kubectl port-forward svc/jaeger 16686`."""
    service = by_kind(rendered[overlay], "Service")["jaeger"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports["ui"] == JAEGER_UI_PORT


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
    assert source == str(CONSOLE_CONFIGS["swarm"])
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
        CONSOLE_CONFIGS[overlay].read_text()
    )
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = by_kind(docs, "Service")["gateway"]
    console = [p for p in service["spec"]["ports"] if named[p["targetPort"]] == CONSOLE_PORT]
    assert [p["port"] for p in console] == [CONSOLE_PORT]
    policy = by_kind(docs, "NetworkPolicy")["gateway"]
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert CONSOLE_PORT in admitted


def test_the_production_ingress_sends_a_host_to_the_console_port_and_none_to_jaeger(
    rendered: Rendered,
) -> None:
    ingress = by_kind(rendered["production"], "Ingress")["erp"]
    backends = {
        (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert ("gateway", "console") in backends
    assert {name for name, _ in backends} == {"gateway"}


def test_jaeger_runs_under_the_base_path_the_trace_links_name(
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
def test_jaeger_s_ui_port_admits_grafana_alone_never_the_gateway(
    rendered: Rendered, overlay: str
) -> None:
    policy = by_kind(rendered[overlay], "NetworkPolicy")["jaeger"]
    admitted = [
        peer
        for rule in policy["spec"]["ingress"]
        if any(port["port"] == "ui" for port in rule["ports"])
        for peer in rule["from"]
    ]
    assert admitted == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}]
