"""The pipeline summary's figures, from a made-up measurement window (pure logic)."""

from __future__ import annotations

import os

from loadtests.procwatch import Window
from loadtests.report import Measured, Stat, summarize

FLOW = Stat("FLOW", "approval 2-step approved", 100, 0, 10.0, 0.0, 900, 1200, 1500)
TOTAL = Stat("", "Aggregated", 1600, 0, 160.0, 0.0, 20, 200, 300)


def _summary(cpu: dict[str, float], machine: float) -> dict[str, float]:
    window = Window(seconds=10.0, cpu=cpu, machine=machine)
    return summarize("pipeline", [FLOW], TOTAL, Measured(window, {})).figures


def test_the_ceiling_counts_only_what_a_flow_costs_outside_the_four_services() -> None:
    cores = len(os.sched_getaffinity(0))
    services = {
        "employee-service": 0.5,
        "approval-request-service": 1.0,
        "approval-processing-service": 0.3,
        "notification-service": 0.2,
    }
    figures = _summary({**services, "ferretdb": 2.0, "locust": 1.0}, machine=6.0)
    assert figures["cpu_ms_per_flow"] == 20.0  # 2.0 CPU-s over 100 flows
    # 4.0 CPU-s outside the services over 100 flows: 40 ms a flow whatever they do
    assert figures["ceiling_flows_per_s"] == round(cores * 1000 / 40, 1)


def test_no_ceiling_without_process_measurements() -> None:
    figures = summarize("pipeline", [FLOW], TOTAL, Measured(None, {})).figures
    assert "ceiling_flows_per_s" not in figures
