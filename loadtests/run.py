"""`python -m loadtests.run SCENARIO`: runs one load scenario headless with Locust against
the services at the given URLs (the local stack by default; a Swarm or Kubernetes
deployment by URL), writes CSV + HTML under a results folder, prints a short summary and
exits 1 when a `--threshold` is missed, 2 when the run itself broke.

Options the runner does not know are handed to the scenario (e.g. `--steps 2`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from loadtests import MEASURING_MARK
from loadtests.procwatch import BACKING_PORTS, ProcessWatch, Window, listening_pids, local_port
from loadtests.report import (
    SERVICES,
    Measured,
    Summary,
    Threshold,
    read_stats,
    summarize,
    verdicts,
)

LOADTESTS = Path(__file__).resolve().parent
REPO = LOADTESTS.parent
SCENARIOS = {
    "pipeline": LOADTESTS / "scenarios" / "pipeline.py",
    "notifications": LOADTESTS / "scenarios" / "notifications.py",
}
DEFAULT_USERS = {"pipeline": 32, "notifications": 2000}
DEFAULT_RATE = {"pipeline": 0.0, "notifications": 500.0}
# Issue 6's performance targets, applied with --targets.
TARGETS = {
    "pipeline": ("flows_per_s=60", "flow_p95_ms=1000", "failures=0", "cpu_ms_per_flow=25"),
    "notifications": (
        "connections=2000",
        "pushes_per_s=500",
        "push_p99_ms=100",
        "failures=0",
        "notification_rss_mb=200",
    ),
}
URLS = {
    "employee": ("employee-service", "http://127.0.0.1:8001"),
    "approvals": ("approval-request-service", "http://127.0.0.1:8002"),
    "processing": ("approval-processing-service", "http://127.0.0.1:8003"),
    "notification": ("notification-service", "http://127.0.0.1:8004"),
}
# Locust's log lines that open and close the measured window (stats are reset at the first).
SPAWNED = "All users spawned"
RUN_TIME_UP = "--run-time limit reached"
SATURATED = "CPU usage above"
MAX_SPAWN_RATE = 250


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--users",
        type=int,
        help="pipeline: concurrent flows (default 32); notifications: WebSockets (default 2000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="pipeline: new flows/s over all requesters (default 0: closed loop); "
        "notifications: /notify calls/s (default 500)",
    )
    parser.add_argument("--duration", default="60s", help="Locust run time incl. ramp-up")
    parser.add_argument(
        "--spawn-rate", type=float, help="Locust users started per second (default: all in ~1s)"
    )
    parser.add_argument("--approvers", type=int, help="pipeline: approver users (default --users)")
    parser.add_argument("--senders", type=int, help="notifications: sender users (one per 10/s)")
    parser.add_argument("--readers", type=int, default=4, help="notifications: REST reader users")
    for key, (service, url) in URLS.items():
        parser.add_argument(f"--{key}-url", default=url, help=f"{service} (default {url})")
    parser.add_argument("--results", type=Path, help="folder for CSV, HTML, log and summary")
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="fail the run unless METRIC meets VALUE (repeatable); see loadtests/README.md",
    )
    parser.add_argument("--targets", action="store_true", help="apply issue 6's targets")
    parser.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="also report CPU and memory of the local process listening on PORT (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="echo Locust's output")
    return parser


def scenario_options(args: argparse.Namespace) -> tuple[list[str], int]:
    """The options handed to the scenario file, and how many Locust users that makes."""
    users = args.users or DEFAULT_USERS[args.scenario]
    rate = DEFAULT_RATE[args.scenario] if args.rate is None else args.rate
    if args.scenario == "pipeline":
        approvers = args.approvers or users
        options = ["--flows", users, "--approvers", approvers, "--flow-rate", rate]
        total = users + approvers
    else:
        senders = args.senders or max(1, math.ceil(rate / 10))
        options = ["--connections", users, "--push-rate", rate, "--senders", senders]
        options += ["--readers", args.readers]
        total = users + senders + args.readers
    for key in URLS:
        options += [f"--{key}-url", getattr(args, f"{key}_url")]
    return [str(o) for o in options], total


def raise_open_files_limit() -> None:
    """Thousands of sockets need more descriptors than the usual soft limit (children inherit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def watched_processes(args: argparse.Namespace) -> dict[str, int]:
    """The services (and, for a local stack, its backing services) running on this machine."""
    ports = {}
    for key, (service, _) in URLS.items():
        port = local_port(getattr(args, f"{key}_url"))
        if port is not None:
            ports[service] = port
    if len(ports) == len(URLS):
        ports.update(BACKING_PORTS)
    for extra in args.watch:
        name, _, port = extra.partition("=")
        ports[name] = int(port)
    return listening_pids(ports)


def connections_gauge(notification_url: str) -> float | None:
    """notification-service's own count of open WebSockets (its /metrics)."""
    try:
        with urllib.request.urlopen(f"{notification_url}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("erp_websocket_connections "):
            return float(line.split()[1])
    return None


def follow_locust(
    process: subprocess.Popen[str], log: IO[str], watch: ProcessWatch, verbose: bool
) -> bool:
    """Copy Locust's output to the log and mark the measured window as it opens and closes;
    True when Locust warned that its own CPU was saturated (figures then understate)."""
    assert process.stdout is not None
    saturated = False
    for line in process.stdout:
        log.write(line)
        if verbose:
            sys.stdout.write(line)
        first_start = SPAWNED in line and "start" not in watch.marks
        if first_start or (MEASURING_MARK in line and "end" not in watch.marks):
            watch.mark("start")  # a scenario's own steady-state mark moves the start later
        elif RUN_TIME_UP in line and "end" not in watch.marks:
            watch.mark("end")
        saturated |= SATURATED in line
    process.wait()
    if "end" not in watch.marks:
        watch.mark("end")
    return saturated


def locust_command(args: argparse.Namespace, forwarded: list[str], results: Path) -> list[str]:
    options, total = scenario_options(args)
    spawn_rate = args.spawn_rate or min(total, MAX_SPAWN_RATE)
    return [
        sys.executable, "-m", "locust", "-f", str(SCENARIOS[args.scenario]), "--headless",
        "-u", str(total), "-r", str(spawn_rate), "-t", args.duration,
        "--csv", str(results / "locust"), "--html", str(results / "report.html"),
        "--reset-stats", "--exit-code-on-error", "0", *options, *forwarded,
    ]  # fmt: skip


def run_locust(
    args: argparse.Namespace, command: list[str], results: Path
) -> tuple[int, ProcessWatch, list[float], bool]:
    """Run Locust while watching the processes; returns its exit status, the watch, the
    sampled WebSocket gauge and whether Locust said its own CPU was saturated."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    connections: list[float] = []
    notification_url = args.notification_url.rstrip("/")

    def sample_gauge() -> None:
        if args.scenario == "notifications":
            value = connections_gauge(notification_url)
            if value is not None:
                connections.append(value)

    watch = ProcessWatch(watched_processes(args), on_sample=sample_gauge)
    with (results / "locust.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        watch.pids["locust"] = process.pid
        watch.start()
        try:
            saturated = follow_locust(process, log, watch, args.verbose)
        finally:
            watch.stop()
    return process.returncode, watch, connections, saturated


def write_summary(
    results: Path, scenario: str, command: list[str], summary: Summary, window: Window | None,
    thresholds: Sequence[Threshold], lines: list[str],
) -> None:  # fmt: skip
    (results / "summary.txt").write_text("\n".join(lines) + "\n")
    verdict = {
        f"{t.metric}{t.operator}{t.value:g}": t.holds(summary.figures.get(t.metric))
        for t in thresholds
    }
    document = {
        "scenario": scenario,
        "command": command,
        "window_seconds": window.seconds if window else None,
        "cpu_seconds": window.cpu if window else None,
        "figures": summary.figures,
        "thresholds": verdict,
    }
    (results / "summary.json").write_text(json.dumps(document, indent=2, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    args, forwarded = build_parser().parse_known_args(argv)
    try:
        thresholds = [Threshold.parse(t) for t in args.threshold]
        if args.targets:
            thresholds += [Threshold.parse(t) for t in TARGETS[args.scenario]]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results: Path = args.results or LOADTESTS / "results" / f"{args.scenario}-{stamp}"
    results.mkdir(parents=True, exist_ok=True)
    raise_open_files_limit()

    command = locust_command(args, forwarded, results)
    options, total = scenario_options(args)
    print(
        f"{args.scenario}: {total} Locust users ({' '.join(options[:6])}), {args.duration}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    status, watch, connections, saturated = run_locust(args, command, results)
    stats_file = results / "locust_stats.csv"
    if status != 0 or not stats_file.exists():
        tail = (results / "locust.log").read_text().splitlines()[-30:]
        print("\n".join(tail), file=sys.stderr)
        print(f"error: Locust exited with {status}; see {results / 'locust.log'}", file=sys.stderr)
        return 2

    rows, aggregated = read_stats(stats_file)
    window = watch.window("start", "end")
    rss = {name: watch.rss_max[name] for name in SERVICES if name in watch.rss_max}
    measured = Measured(window, rss, max(connections) if connections else None)
    summary = summarize(args.scenario, rows, aggregated, measured)
    lines = list(summary.lines)
    if saturated:
        lines.append(
            "warning      Locust reported its own CPU above 90%: the load generator was a limit"
        )
    if thresholds:
        lines += ["thresholds", *verdicts(thresholds, summary.figures)]
    lines.append(f"results      {results} (report.html, locust_stats.csv, summary.json)")
    print("\n".join(lines), flush=True)
    write_summary(results, args.scenario, command, summary, window, thresholds, lines)
    missed = [t for t in thresholds if not t.holds(summary.figures.get(t.metric))]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
