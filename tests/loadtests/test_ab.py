"""`python -m loadtests.ab`: the verdict from the runs' figures, and a short sitting of two
commits end to end (worktrees made and removed, each side's services started and stopped)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from loadtests.ab import Run, report

REPO = Path(__file__).resolve().parents[2]


def run(side: str, flows_per_s: float, **cpu: float) -> Run:
    return Run(side, flows_per_s, 1000.0, {name.replace("_", "-"): ms for name, ms in cpu.items()})


def test_the_verdict_is_the_ratio_of_the_mean_throughputs_against_the_budget() -> None:
    runs = [
        run("before", 30.0, ferretdb=16.0),
        run("after", 18.0, ferretdb=26.0),
        run("after", 20.0, ferretdb=24.0),
        run("before", 26.0, ferretdb=18.0),
    ]
    lines, ok = report(runs, budget=0.9)
    assert not ok
    verdict = (
        "throughput: 19.0 flows/s after against 28.0 before, 0.68 (outside the budget of 0.90)"
    )
    assert verdict in lines
    assert ["ferretdb", "17.0", "25.0"] in [line.split() for line in lines]
    assert report(runs, budget=0.6)[1]


def free_base_port(count: int = 4) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for base in range(18100, 19000, count):
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def worktrees() -> str:
    return subprocess.run(
        ["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def test_a_short_sitting_of_head_against_itself_prints_every_run_and_cleans_up(
    tmp_path: Path,
) -> None:
    ours = worktrees()
    options = ["--duration", "4s", "--users", "2", "--budget", "0", "--results", str(tmp_path)]
    ports = ["--base-port", str(free_base_port())]
    sitting = subprocess.run(
        [sys.executable, "-m", "loadtests.ab", "HEAD", "HEAD", *options, *ports],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert sitting.returncode == 0, f"{sitting.stdout}\n{sitting.stderr}"
    for n, side in enumerate(["before", "after", "after", "before"], start=1):
        assert f"run {n} {side}: " in sitting.stdout
        assert (tmp_path / f"{n}-{side}" / "summary.json").is_file()
    assert "flows/s after against" in sitting.stdout
    assert "approval-request-service" in sitting.stdout
    assert worktrees() == ours
