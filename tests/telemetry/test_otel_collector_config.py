"""The OpenTelemetry Collector config of observability/, run by a real collector.

No contrib collector image runs here. The Jaeger v2 binary the local stack builds is an
OpenTelemetry Collector distribution with the same OTLP receiver, memory_limiter and batch
processors, span metrics connector and Prometheus exporter, on an older collector core:
it validates the config and runs it, so the span metric names the dashboards use are the
ones this config produces.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.apps import stop_process
from devstack.backing import JAEGER_MODULE
from devstack.install import go_binary
from tests.support.stack import free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "observability" / "otel-collector" / "config.yaml"
GRAFANA_DIR = REPO / "observability" / "grafana"
SECTIONS = ("extensions", "receivers", "processors", "exporters", "connectors")
# The local Jaeger's collector core predates the lower_snake_case component names, and
# ships healthcheckv2 (same `endpoint` setting) instead of health_check.
OLDER_NAMES = {"otlp_grpc": "otlp", "span_metrics": "spanmetrics", "health_check": "healthcheckv2"}
DEADLINE_SECONDS = 30


def collector_config() -> dict[str, Any]:
    return dict(yaml.safe_load(CONFIG.read_text()))


def _older(component: str) -> str:
    kind, _, name = component.partition("/")
    return OLDER_NAMES.get(kind, kind) + (f"/{name}" if name else "")


def for_local_collector(config: dict[str, Any]) -> dict[str, Any]:
    """The same config with the component names the local collector core knows."""
    older: dict[str, Any] = {
        section: {_older(key): value for key, value in config.get(section, {}).items()}
        for section in SECTIONS
    }
    service = config["service"]
    older["service"] = {
        **service,
        "extensions": [_older(name) for name in service["extensions"]],
        "pipelines": {
            pipeline: {role: [_older(c) for c in names] for role, names in parts.items()}
            for pipeline, parts in service["pipelines"].items()
        },
    }
    return older


@pytest.fixture(scope="module")
def jaeger_binary(infra: None) -> Path:
    # The infra fixture's `erp infra up --with-jaeger` has built it; this only finds it.
    return go_binary(*JAEGER_MODULE, "./cmd/jaeger", "jaeger", probe=["version"])


def test_collector_listens_where_the_services_and_prometheus_expect_it() -> None:
    config = collector_config()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["exporters"]["prometheus"]["endpoint"] == "0.0.0.0:8889"
    assert config["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert config["service"]["extensions"] == ["health_check"]
    pipelines = config["service"]["pipelines"]
    assert set(pipelines["traces"]["exporters"]) == {"otlp_grpc/jaeger", "span_metrics"}
    assert pipelines["metrics/span_metrics"]["receivers"] == ["span_metrics"]
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", name
        assert "batch" in pipeline["processors"], name


def test_collector_core_accepts_the_config(jaeger_binary: Path, tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(for_local_collector(collector_config())))
    done = subprocess.run(
        [str(jaeger_binary), "validate", f"--config={path}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def collector(jaeger_binary: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The config running on loopback ports: (OTLP/HTTP URL, span metrics URL). Jaeger
    itself is not there; the exporter to it retries in the background."""
    config = for_local_collector(collector_config())
    otlp, metrics = free_port(), free_port()
    config["receivers"]["otlp"]["protocols"] = {"http": {"endpoint": f"127.0.0.1:{otlp}"}}
    config["exporters"]["prometheus"]["endpoint"] = f"127.0.0.1:{metrics}"
    config["exporters"]["otlp/jaeger"]["endpoint"] = f"127.0.0.1:{free_port()}"
    config["extensions"]["healthcheckv2"]["endpoint"] = f"127.0.0.1:{free_port()}"
    config["connectors"]["spanmetrics"]["metrics_flush_interval"] = "200ms"
    config["service"]["telemetry"] = {"metrics": {"level": "none"}}
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "collector.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(jaeger_binary), f"--config={path}"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{otlp}", f"http://127.0.0.1:{metrics}/metrics"
    finally:
        stop_process(proc, grace=10)


def _server_span(service: str, name: str) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": secrets.token_hex(16),
                                "spanId": secrets.token_hex(8),
                                "name": name,
                                "kind": 2,
                                "startTimeUnixNano": str(now - 12_000_000),
                                "endTimeUnixNano": str(now),
                            }
                        ]
                    }
                ],
            }
        ]
    }


def test_span_metrics_the_dashboards_use_come_out_of_the_collector(
    collector: tuple[str, str],
) -> None:
    otlp_url, metrics_url = collector
    texts = [path.read_text() for path in GRAFANA_DIR.rglob("*.json")]
    texts.append((GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yaml").read_text())
    used = {name for text in texts for name in re.findall(r"traces_span_metrics_\w+", text)}
    assert used, "no dashboard uses span metrics any more: drop this test"
    span = _server_span("employee-service", "GET /employees/{employee_id}")
    deadline = time.monotonic() + DEADLINE_SECONDS
    exported: set[str] = set()
    while not used <= exported:
        assert time.monotonic() < deadline, f"the collector exports {exported}, not {used}"
        try:
            sent = httpx.post(f"{otlp_url}/v1/traces", json=span, timeout=2)
            if sent.status_code == 200:
                lines = httpx.get(metrics_url, timeout=2).text.splitlines()
                exported = {
                    line.split("{", 1)[0]
                    for line in lines
                    if 'service_name="employee-service"' in line
                    and 'span_kind="SPAN_KIND_SERVER"' in line
                }
        except httpx.TransportError:
            pass  # still starting
        time.sleep(0.2)
