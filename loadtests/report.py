"""Turns Locust's CSV statistics and the process measurements of one run into the figures
the benchmark is judged on, the printed summary, and the threshold verdicts."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.procwatch import Window

MB = 1024 * 1024
SERVICES = (
    "employee-service",
    "approval-request-service",
    "approval-processing-service",
    "notification-service",
)

# name -> (direction, what it is). "min": the figure must reach the value; "max": stay at or
# under it.
METRICS: dict[str, tuple[str, str]] = {
    "flows": ("min", "completed flows"),
    "flows_per_s": ("min", "completed flows per second"),
    "flow_p50_ms": ("max", "median flow time (worst flow kind)"),
    "flow_p95_ms": ("max", "95th percentile flow time (worst flow kind)"),
    "flow_p99_ms": ("max", "99th percentile flow time (worst flow kind)"),
    "cpu_ms_per_flow": ("max", "CPU of the four services per completed flow"),
    "ceiling_flows_per_s": (
        "min",
        "flows/s the machine's cores allow with the four services at zero CPU",
    ),
    "connections": ("min", "WebSockets open at once on notification-service"),
    "pushes": ("min", "pushes received"),
    "pushes_per_s": ("min", "pushes received per second"),
    "push_p50_ms": ("max", "median push latency"),
    "push_p95_ms": ("max", "95th percentile push latency"),
    "push_p99_ms": ("max", "99th percentile push latency"),
    "lost_pushes": ("max", "pushes never received"),
    "endpoint_p95_ms": ("max", "95th percentile of the slowest endpoint"),
    "failures": ("max", "failed requests, flows and pushes"),
    "generator_lag_p99_ms": ("max", "99th percentile of the load generator's own delay"),
    "notification_rss_mb": ("max", "peak resident memory of notification-service"),
    "processing_rss_mb": ("max", "peak resident memory of approval-processing-service"),
}


@dataclass(frozen=True)
class Stat:
    """One row of Locust's `_stats.csv`."""

    type: str
    name: str
    count: int
    failures: int
    rps: float
    failures_per_s: float
    p50: float
    p95: float
    p99: float

    @property
    def label(self) -> str:
        return f"{self.type} {self.name}".strip()


def read_stats(path: Path) -> tuple[list[Stat], Stat]:
    """The rows of a `_stats.csv`, and its `Aggregated` row."""
    rows: list[Stat] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append(
                Stat(
                    type=row["Type"],
                    name=row["Name"],
                    count=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    rps=float(row["Requests/s"]),
                    failures_per_s=float(row["Failures/s"]),
                    p50=_number(row["50%"]),
                    p95=_number(row["95%"]),
                    p99=_number(row["99%"]),
                )
            )
    aggregated = next(r for r in rows if r.name == "Aggregated")
    return [r for r in rows if r.name != "Aggregated" and r.count], aggregated


def _number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else 0.0


@dataclass
class Measured:
    """What was measured outside Locust: process CPU and memory, server-side gauges."""

    window: Window | None
    rss_max: Mapping[str, int]
    connections_max: float | None = None


@dataclass
class Summary:
    figures: dict[str, float]
    lines: list[str]


def summarize(scenario: str, rows: Sequence[Stat], total: Stat, measured: Measured) -> Summary:
    figures: dict[str, float] = {"failures": float(total.failures)}
    lines: list[str] = []
    endpoints = [
        r for r in rows if r.type not in ("FLOW", "LAG") and r.name not in ("push", "push lost")
    ]
    lag = next((r for r in rows if r.type == "LAG"), None)
    if scenario == "pipeline":
        lines += _flows(rows, figures, measured)
    else:
        lines += _pushes(rows, figures, measured)
    if endpoints:
        figures["endpoint_p95_ms"] = max(r.p95 for r in endpoints)
        columns = ("n", "fails", "/s", "p50", "p95", "p99")
        widths = (7, 7, 7, 6, 6, 6)
        lines.append(
            f"{'endpoints (ms)':<42} "
            + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
        )
        lines += [
            f"  {r.label:<40} {r.count:>7} {r.failures:>7} {r.rps:>7.1f} "
            f"{r.p50:>6.0f} {r.p95:>6.0f} {r.p99:>6.0f}"
            for r in sorted(endpoints, key=lambda r: -r.count)
        ]
    if lag is not None:
        figures["generator_lag_p99_ms"] = lag.p99
        lines.append(
            f"generator    event loop late by p50 {lag.p50:.0f} ms, p99 {lag.p99:.0f} ms "
            "(included in every figure above)"
        )
    failed = [r for r in rows if r.failures]
    lines.append(
        f"failures     {total.failures}"
        + ("" if not failed else " (" + ", ".join(f"{r.label}: {r.failures}" for r in failed) + ")")
    )
    lines += _resources(measured, figures)
    return Summary(figures, lines)


def _flows(rows: Sequence[Stat], figures: dict[str, float], measured: Measured) -> list[str]:
    flows = [r for r in rows if r.type == "FLOW"]
    completed = sum(r.count - r.failures for r in flows)
    per_second = sum(r.rps - r.failures_per_s for r in flows)
    figures.update(flows=completed, flows_per_s=round(per_second, 2))
    lines = [f"flows        {completed} completed, {per_second:.1f}/s"]
    if flows:
        worst = {q: max(getattr(r, q) for r in flows) for q in ("p50", "p95", "p99")}
        figures.update(flow_p50_ms=worst["p50"], flow_p95_ms=worst["p95"], flow_p99_ms=worst["p99"])
        lines.append(
            f"flow time    p50 {worst['p50']:.0f} ms, p95 {worst['p95']:.0f} ms, "
            f"p99 {worst['p99']:.0f} ms (worst of {len(flows)} flow kind(s))"
        )
        lines += [
            f"  {r.name:<32} {r.count:>7} {r.rps:>7.1f}/s  p50 {r.p50:>5.0f}  p95 {r.p95:>5.0f}  "
            f"p99 {r.p99:>5.0f} ms" + (f"  ({r.failures} failed)" if r.failures else "")
            for r in sorted(flows, key=lambda r: -r.count)
        ]
    window = measured.window
    if window is not None and completed:
        service_cpu = sum(window.cpu.get(name, 0.0) for name in SERVICES)
        if any(name in window.cpu for name in SERVICES):
            figures["cpu_ms_per_flow"] = round(service_cpu * 1000 / completed, 2)
            lines.append(
                f"cpu per flow {figures['cpu_ms_per_flow']:.1f} ms (four services: "
                f"{service_cpu:.1f} CPU-s over {completed} flows; whole machine: "
                f"{window.machine * 1000 / completed:.1f} ms)"
            )
            lines += _ceiling(window, service_cpu, completed, figures)
    return lines


def _ceiling(
    window: Window, service_cpu: float, completed: int, figures: dict[str, float]
) -> list[str]:
    """What the cores allow: a CPU-bound pipeline completes at most cores / (CPU per flow)
    flows a second. Everything outside the four services (databases, broker, the load
    generator, the rest of the machine) costs a flow what it costs whatever the services
    do, so it alone caps the throughput; the services' own CPU comes on top."""
    cores = len(os.sched_getaffinity(0))
    outside_ms = max(window.machine - service_cpu, 0.0) * 1000 / completed
    whole_ms = window.machine * 1000 / completed
    if outside_ms <= 0 or whole_ms <= 0:
        return []
    figures["ceiling_flows_per_s"] = round(cores * 1000 / outside_ms, 1)
    heaviest = sorted(
        ((name, seconds) for name, seconds in window.cpu.items() if name not in SERVICES),
        key=lambda item: -item[1],
    )
    parts = ", ".join(f"{name} {seconds * 1000 / completed:.1f}" for name, seconds in heaviest)
    return [
        f"ceiling      {cores} cores = {cores * 1000} ms of CPU a second; outside the four "
        f"services a flow costs {outside_ms:.1f} ms ({parts}; rest of the machine "
        f"{max(outside_ms - sum(s for _, s in heaviest) * 1000 / completed, 0.0):.1f}), "
        f"so even with services that cost nothing this machine completes at most "
        f"{figures['ceiling_flows_per_s']:.1f} flows/s; at {whole_ms:.1f} ms a flow in all, "
        f"{cores * 1000 / whole_ms:.1f} flows/s"
    ]


def _pushes(rows: Sequence[Stat], figures: dict[str, float], measured: Measured) -> list[str]:
    push = next((r for r in rows if r.type == "WS" and r.name == "push"), None)
    lost = next((r for r in rows if r.type == "WS" and r.name == "push lost"), None)
    notify = next((r for r in rows if r.name == "/notify"), None)
    figures["lost_pushes"] = float(lost.count if lost else 0)
    lines = []
    if measured.connections_max is not None:
        figures["connections"] = measured.connections_max
        lines.append(f"connections  {measured.connections_max:.0f} open at once (server gauge)")
    if push is not None:
        figures.update(
            pushes=push.count,
            pushes_per_s=round(push.rps, 2),
            push_p50_ms=push.p50,
            push_p95_ms=push.p95,
            push_p99_ms=push.p99,
        )
        sent = f" of {notify.rps:.1f}/s sent" if notify else ""
        lines.append(
            f"pushes       {push.count} received, {push.rps:.1f}/s{sent}; "
            f"{figures['lost_pushes']:.0f} lost"
        )
        lines.append(
            f"push latency p50 {push.p50:.0f} ms, p95 {push.p95:.0f} ms, p99 {push.p99:.0f} ms "
            "(from /notify call to receipt)"
        )
    return lines


def _resources(measured: Measured, figures: dict[str, float]) -> list[str]:
    lines = []
    window = measured.window
    if window is not None and window.seconds > 0:
        parts = [
            f"{name} {seconds:.1f}s ({seconds / window.seconds:.0%})"
            for name, seconds in window.cpu.items()
        ]
        lines.append(f"cpu          over {window.seconds:.0f}s: " + ", ".join(parts))
        watched = sum(window.cpu.values())
        lines.append(
            f"machine      {window.machine / window.seconds:.0%} of one core busy on average "
            f"(of which {max(0.0, window.machine - watched) / window.seconds:.0%} outside "
            "the watched processes)"
        )
    if measured.rss_max:
        lines.append(
            "peak rss     "
            + ", ".join(f"{name} {rss / MB:.0f} MB" for name, rss in measured.rss_max.items())
        )
        for name, figure in (
            ("notification-service", "notification_rss_mb"),
            ("approval-processing-service", "processing_rss_mb"),
        ):
            if name in measured.rss_max:
                figures[figure] = round(measured.rss_max[name] / MB, 1)
    return lines


@dataclass(frozen=True)
class Threshold:
    metric: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        metric, sep, value = text.partition("=")
        if not sep or metric not in METRICS:
            raise ValueError(
                f"{text!r}: expected METRIC=VALUE with METRIC one of {', '.join(METRICS)}"
            )
        return cls(metric, float(value))

    @property
    def operator(self) -> str:
        return ">=" if METRICS[self.metric][0] == "min" else "<="

    def holds(self, figure: float | None) -> bool:
        if figure is None:
            return False
        return figure >= self.value if self.operator == ">=" else figure <= self.value


def verdicts(thresholds: Sequence[Threshold], figures: Mapping[str, float]) -> list[str]:
    lines = []
    for threshold in thresholds:
        figure = figures.get(threshold.metric)
        shown = "not measured" if figure is None else f"{figure:g}"
        verdict = "ok" if threshold.holds(figure) else "MISSED"
        lines.append(
            f"  {threshold.metric} {threshold.operator} {threshold.value:g}: {shown}  {verdict}"
        )
    return lines
