"""A few seconds of each load scenario against the session's services: the scenarios run,
complete their work and report (CSV, HTML, summary). Speed is the benchmark's business.

Locust runs as a subprocess (through `python -m loadtests.run`, as CI and people do), so
its gevent monkey-patching never reaches this pytest process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.stack import Stack

REPO = Path(__file__).resolve().parents[2]


def loadtest(
    stack: Stack, scenario: str, results: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    urls = {
        "--employee-url": stack.url("employee"),
        "--approvals-url": stack.url("approval_request"),
        "--processing-url": stack.url("approval_processing"),
        "--notification-url": stack.url("notification"),
    }
    command = [sys.executable, "-m", "loadtests.run", scenario, "--results", str(results)]
    command += [part for option in urls.items() for part in option]
    return subprocess.run(
        [*command, *options], cwd=REPO, capture_output=True, text=True, timeout=180
    )


def reported(run: subprocess.CompletedProcess[str], results: Path) -> str:
    """The summary the run printed, once it exited 0 and wrote every report."""
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    for report in ("locust_stats.csv", "locust_failures.csv", "report.html", "summary.json"):
        assert (results / report).stat().st_size > 0, report
    return run.stdout


def figures(results: Path) -> dict[str, float]:
    summary: dict[str, dict[str, float]] = json.loads((results / "summary.json").read_text())
    return summary["figures"]


def test_pipeline_scenario_completes_flows_and_reports_them(stack: Stack, tmp_path: Path) -> None:
    run = loadtest(
        stack, "pipeline", tmp_path, "--duration", "5s", "--users", "2", "--approvers", "3",
        "--threshold", "flows=1",
    )  # fmt: skip
    output = reported(run, tmp_path)

    assert "flow time" in output
    assert "cpu per flow" in output
    assert "FLOW" in (tmp_path / "locust_stats.csv").read_text()
    assert figures(tmp_path)["flows"] >= 1


def test_pipeline_leave_flows_reserve_their_days_without_refusals(
    stack: Stack, tmp_path: Path
) -> None:
    """Every request a LEAVE one: each requester's leave falls on days of their own within
    the balance, so employee-service never refuses one (an overlap would be a 409)."""
    run = loadtest(
        stack, "pipeline", tmp_path, "--duration", "5s", "--users", "2", "--approvers", "3",
        "--leave-share", "1", "--threshold", "flows=2",
    )  # fmt: skip
    reported(run, tmp_path)

    failures = (tmp_path / "locust_failures.csv").read_text().splitlines()
    assert failures[1:] == [], failures


def test_notification_scenario_times_pushes_over_open_sockets(stack: Stack, tmp_path: Path) -> None:
    run = loadtest(
        stack, "notifications", tmp_path, "--duration", "5s", "--users", "10", "--rate", "20",
        "--readers", "2", "--threshold", "pushes=1", "--threshold", "connections=10",
    )  # fmt: skip
    output = reported(run, tmp_path)

    assert "push latency" in output
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert "WS,push," in stats
    assert "POST,/notify," in stats
    assert "GET,/attendance/me," in stats
    assert figures(tmp_path)["pushes"] >= 1


def test_a_missed_threshold_fails_the_run(stack: Stack, tmp_path: Path) -> None:
    run = loadtest(
        stack, "notifications", tmp_path, "--duration", "2s", "--users", "2", "--rate", "5",
        "--readers", "1", "--threshold", "pushes_per_s=100000",
    )  # fmt: skip

    assert run.returncode == 1, f"{run.stdout}\n{run.stderr}"
    assert "pushes_per_s >= 100000: " in run.stdout
    assert "MISSED" in run.stdout
