"""The Prometheus and Grafana configuration of observability/ proven against the test stack.

A real Prometheus scrapes the four service processes with the repository's scrape config
(targets rewritten to the test ports) and evaluates alerts.yml, while the test drives an
approval through the services. Then every dashboard query and alert rule must parse, name
only metrics the services export, and, where the test exercised the feature, return data.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devstack import backing
from tests.support import factories
from tests.support.auth import as_admin, as_user, token_for
from tests.support.prometheus import PACKAGE_OF_JOB, running
from tests.support.stack import Stack
from tests.telemetry.observability_queries import (
    DASHBOARDS,
    DATASOURCES,
    PROMETHEUS_DIR,
    Query,
    alert_queries,
    as_sent,
    dashboards,
    datasource_queries,
    metric_names,
    panel_queries,
)

# Installed by the `infra` fixture (`erp install --with-prometheus`).
PROMTOOL = str(backing.PROMTOOL)

SERVICE_JOBS = "|".join(PACKAGE_OF_JOB)
COLLECTOR_JOB = "otel-collector"

# Exported only by the OpenTelemetry Collector's span_metrics connector
# (observability/otel-collector/config.yaml); no collector runs in the test stack.
# test_otel_collector_config.py proves the collector config produces these names.
COLLECTOR_ONLY_METRICS = frozenset(
    {"traces_span_metrics_calls_total", "traces_span_metrics_duration_seconds_bucket"}
)
NO_COLLECTOR = "span metrics come from the collector, which the test stack does not run"
# Exported by a service but never incremented here, so Prometheus holds no series for
# them: they must at least be declared (HELP/TYPE) on a service's /metrics.
DECLARED_NOT_OBSERVED = {
    "erp_dependency_errors_total": "no call to another service fails in this test",
}
# Panel queries allowed to come back empty: (dashboard file, panel title, refId) -> why.
NOT_EXERCISED = {
    ("service-overview.json", "Server spans per second by status", "A"): NO_COLLECTOR,
    (
        "service-overview.json",
        "Server span p95 by operation (exemplars open the trace in Jaeger)",
        "A",
    ): NO_COLLECTOR,
}
DEADLINE_SECONDS = 30


@dataclass(frozen=True)
class Prometheus:
    url: str
    http: httpx.AsyncClient

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(f"{self.url}{path}", params=params)

    async def instant(self, expr: str) -> list[float]:
        """Values of an instant query; an empty list when it matched nothing."""
        response = await self.get("/api/v1/query", query=expr)
        assert response.status_code == 200, f"{expr}: {response.text}"
        data = response.json()["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(sample["value"][1]) for sample in data["result"]]

    async def total(self, expr: str) -> float:
        return sum(await self.instant(expr))

    async def wait_for(self, expr: str, at_least: float) -> None:
        """Until the last scrape shows ``expr`` summing to ``at_least`` or more."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (value := await self.total(expr)) < at_least:
            assert time.monotonic() < deadline, f"{expr} stayed at {value} < {at_least}"
            await asyncio.sleep(0.25)


@pytest.fixture(scope="module")
def prometheus_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(stack, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


async def _eventually(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (result := await probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return result


def _ws(stack: Stack, employee_id: int) -> str:
    base = stack.url("notification").replace("http://", "ws://", 1)
    return f"{base}/ws/{employee_id}?token={token_for(employee_id)}"


async def _credentials(request: httpx.Request) -> None:
    """An approver reads and decides their own inbox; an administrator does the rest."""
    if "authorization" in request.headers:
        return
    path = request.url.path
    if path.startswith("/process/"):
        request.headers.update(as_user(int(path.split("/")[2])))
    else:
        request.headers.update(as_admin())


async def _approve_two_step_request(
    client: httpx.AsyncClient,
    stack: Stack,
    requester: int,
    approvers: dict[int, ClientConnection],
) -> None:
    """A 2-step GENERAL request approved by both approvers, each told by WebSocket."""
    created = await client.post(
        f"{stack.url('approval_request')}/approvals",
        json=factories.approval_body(requester, list(approvers)),
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["requestId"]
    processing = stack.url("approval_processing")
    for approver, socket in approvers.items():

        async def arrived(approver: int = approver) -> bool:
            items = (await client.get(f"{processing}/process/{approver}")).json()
            return any(item["requestId"] == request_id for item in items)

        await _eventually(arrived, f"request {request_id} in the inbox of {approver}")
        await _assignment_pushed(socket, request_id)
        decided = await client.post(
            f"{processing}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert decided.status_code == 200, decided.text

    async def approved() -> bool:
        doc = (await client.get(f"{stack.url('approval_request')}/approvals/{request_id}")).json()
        return bool(doc["finalStatus"] == "approved")

    await _eventually(approved, f"request {request_id} approved")


async def _reassign_and_withdraw_a_request(
    client: httpx.AsyncClient, stack: Stack, requester: int, approver: int, substitute: int
) -> None:
    """A 1-step GENERAL request reassigned by its approver to ``substitute``, then
    withdrawn by its requester (so no item is left waiting)."""
    approvals = f"{stack.url('approval_request')}/approvals"
    created = await client.post(approvals, json=factories.approval_body(requester, [approver]))
    assert created.status_code == 201, created.text
    request_id = created.json()["requestId"]
    reassigned = await client.post(
        f"{approvals}/{request_id}/steps/1/reassign",
        json={"approverId": substitute},
        headers=as_user(approver),
    )
    assert reassigned.status_code == 200, reassigned.text
    withdrawn = await client.post(f"{approvals}/{request_id}/withdraw", headers=as_user(requester))
    assert withdrawn.status_code == 200, withdrawn.text


async def _cancel_an_approved_leave(
    client: httpx.AsyncClient, stack: Stack, requester: int, approver: int
) -> None:
    """A 1-step LEAVE request approved, then cancelled by its requester before it starts."""
    approvals = f"{stack.url('approval_request')}/approvals"
    created = await client.post(approvals, json=factories.leave_body(requester, [approver]))
    assert created.status_code == 201, created.text
    request_id = created.json()["requestId"]
    processing = stack.url("approval_processing")

    async def decided() -> bool:
        answer = await client.post(
            f"{processing}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        return answer.status_code == 200

    await _eventually(decided, f"request {request_id} approved by {approver}")
    cancelled = await client.post(
        f"{approvals}/{request_id}/cancel", json={"reason": "취소"}, headers=as_user(requester)
    )
    assert cancelled.status_code == 200, cancelled.text


async def _assignment_pushed(socket: ClientConnection, request_id: int) -> None:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE_SECONDS))
        if (message["type"], message.get("requestId")) == ("approval_assigned", request_id):
            return


async def _send_oversized_message(stack: Stack, employee_id: int) -> None:
    """The server drops a client that sends more than it accepts (close 1009)."""
    async with connect(_ws(stack, employee_id), ping_interval=None) as socket:
        await socket.send("x" * 5000)
        with suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(socket.recv(), DEADLINE_SECONDS)
    assert socket.close_code == 1009


@pytest.fixture(scope="module")
async def prometheus(prometheus_url: str, stack: Stack) -> AsyncIterator[Prometheus]:
    """Prometheus after two rounds of traffic, with the approvers' WebSockets still open.

    Two rounds, with a scrape in between, because a series first seen at its incremented
    value shows no increase to rate(): the second round is what the panels' rates see.
    """
    async with (
        httpx.AsyncClient(timeout=15) as queries,
        httpx.AsyncClient(timeout=15, event_hooks={"request": [_credentials]}) as client,
    ):
        prom = Prometheus(prometheus_url, queries)
        await prom.wait_for(f'up{{job=~"{SERVICE_JOBS}"}}', len(PACKAGE_OF_JOB))
        requester, first, second = await factories.employees(client, stack.url("employee"), 3)
        async with (
            connect(_ws(stack, first), ping_interval=None) as first_socket,
            connect(_ws(stack, second), ping_interval=None) as second_socket,
        ):
            milestones = {
                "sum(erp_approval_completion_seconds_count)": 0.0,
                'sum(erp_processing_decisions_total{result="applied"})': 0.0,
                'sum(erp_websocket_dropped_connections_total{reason="message_too_big"})': 0.0,
                "sum(erp_approval_withdrawals_total)": 0.0,
                "sum(erp_approval_reassignments_total)": 0.0,
                "sum(erp_leave_cancellations_total)": 0.0,
            }
            for expr in milestones:
                milestones[expr] = await prom.total(expr)
            for _ in range(2):
                approvers = {first: first_socket, second: second_socket}
                await _approve_two_step_request(client, stack, requester, approvers)
                await _reassign_and_withdraw_a_request(client, stack, requester, first, second)
                await _cancel_an_approved_leave(client, stack, requester, second)
                await _send_oversized_message(stack, requester)
                milestones = {expr: value + 1 for expr, value in milestones.items()}
                for expr, value in milestones.items():
                    await prom.wait_for(expr, value)
            await prom.wait_for("sum(erp_websocket_connections)", 2)
            yield prom


async def variable_values(prom: Prometheus, board: dict[str, Any]) -> dict[str, str]:
    """Each query variable as Grafana fills it with "All" selected: (v1|v2|...)."""
    values = {}
    for variable in board.get("templating", {}).get("list", []):
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"].strip())
        assert match, f"{board['uid']}: unsupported variable {variable['definition']}"
        selector, label = match.groups()
        response = await prom.get(
            "/api/v1/series", **{"match[]": selector, "start": str(time.time() - 600)}
        )
        assert response.status_code == 200, f"{variable['definition']}: {response.text}"
        found = sorted({series[label] for series in response.json()["data"] if label in series})
        assert found, f"{board['uid']}: variable {variable['name']} has no values"
        values[variable["name"]] = "(" + "|".join(found) + ")"
    return values


async def sent_queries(prom: Prometheus) -> list[tuple[Query, str]]:
    boards = dashboards()
    variables = {name: await variable_values(prom, board) for name, board in boards.items()}
    queries = [(q, as_sent(q.expr, variables[q.key[0]] if q.key else {})) for q in panel_queries()]
    queries += [(q, as_sent(q.expr, {})) for q in alert_queries() + datasource_queries()]
    return queries


@pytest.mark.usefixtures("infra")
def test_promtool_accepts_the_config_the_rules_and_their_unit_tests() -> None:
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(
            [PROMTOOL, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_scrape_config_has_one_job_per_service_plus_the_collector() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }
    expected = {job: [f"{job}:8000"] for job in PACKAGE_OF_JOB}
    assert targets == {**expected, COLLECTOR_JOB: [f"{COLLECTOR_JOB}:8889"]}
    assert config["rule_files"] == ["alerts.yml"]


def test_dashboards_query_the_provisioned_prometheus_datasource() -> None:
    sources = {s["uid"]: s for s in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["jaeger"]["type"] == "jaeger"
    exemplars = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [(e["name"], e["datasourceUid"]) for e in exemplars] == [("trace_id", "jaeger")]
    assert {path.name for path in DASHBOARDS} == {
        "service-overview.json",
        "approval-pipeline.json",
        "notifications.json",
        "dependencies.json",
    }
    uids = set()
    for name, board in dashboards().items():
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{name} / {panel['title']}: no query"
            for holder in [panel, *panel["targets"]]:
                assert holder["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    assert len(uids) == len(DASHBOARDS)


async def test_prometheus_scrapes_every_service_of_the_stack(prometheus: Prometheus) -> None:
    response = await prometheus.get("/api/v1/targets", state="active")
    health = {t["labels"]["job"]: t["health"] for t in response.json()["data"]["activeTargets"]}
    assert health == dict.fromkeys(PACKAGE_OF_JOB, "up")


async def test_every_dashboard_alert_and_datasource_query_parses(prometheus: Prometheus) -> None:
    failures = []
    for query, expr in await sent_queries(prometheus):
        response = await prometheus.get("/api/v1/query", query=expr)
        if response.status_code != 200:
            failures.append(f"{query.origin}: {response.json().get('error')}")
    assert not failures, "\n".join(failures)


async def test_alert_rules_evaluate_without_errors(prometheus: Prometheus) -> None:
    # Evaluated every second against the stack's real series since Prometheus started.
    groups = (await prometheus.get("/api/v1/rules")).json()["data"]["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {q.origin.removeprefix("alert ") for q in alert_queries()}
    broken = {name: rule.get("lastError") for name, rule in rules.items() if rule["health"] != "ok"}
    assert not broken


async def test_queries_name_only_metrics_the_services_export(prometheus: Prometheus) -> None:
    named: dict[str, set[str]] = {}
    for query in panel_queries() + alert_queries() + datasource_queries():
        names = metric_names(query.expr)
        assert names, f"{query.origin}: no metric found in {query.expr}"
        for name in names:
            named.setdefault(name, set()).add(query.origin)
    missing = []
    for name, origins in sorted(named.items()):
        if name in COLLECTOR_ONLY_METRICS:
            continue
        selector = f'{{__name__="{name}", job=~"{SERVICE_JOBS}"}}'
        series = await prometheus.get("/api/v1/series", **{"match[]": selector})
        if series.json()["data"]:
            continue
        if name in DECLARED_NOT_OBSERVED:
            declared = await prometheus.get(
                "/api/v1/targets/metadata",
                metric=name,
                match_target=f'{{job=~"{SERVICE_JOBS}"}}',
            )
            if declared.json()["data"]:
                continue
        missing.append(f"{name} (used by {', '.join(sorted(origins))})")
    assert not missing, "metrics no service exports:\n" + "\n".join(missing)
    unused = (COLLECTOR_ONLY_METRICS | set(DECLARED_NOT_OBSERVED)) - set(named)
    assert not unused, f"listed but no longer used: {unused}"


async def test_every_exercised_panel_shows_data(prometheus: Prometheus) -> None:
    empty = []
    queries = [(q, expr) for q, expr in await sent_queries(prometheus) if q.key]
    assert set(NOT_EXERCISED) <= {q.key for q, _ in queries}, "stale NOT_EXERCISED entry"
    for query, expr in queries:
        if query.key in NOT_EXERCISED:
            continue
        values = await prometheus.instant(expr)
        # A histogram quantile over no new observations is NaN: that shows nothing either.
        if not any(math.isfinite(value) for value in values):
            empty.append(f"{query.origin}: {expr} -> {values}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
