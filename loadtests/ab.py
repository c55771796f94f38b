"""`python -m loadtests.ab BEFORE [AFTER]`: the pipeline's throughput at two commits, measured
in one sitting on one machine. Each commit is checked out into a worktree of its own and
runs its own code, its own scenario and its own employee migrations (an older tree against
a newer schema fails its inserts and its outbox retries them all run long). Every run gets
fresh databases, starts one process a service on private ports, untraced, runs the pipeline
and stops them; runs alternate before, after, after, before, ``--rounds`` times, so that a
machine drifting during the sitting weighs on both sides alike. Prints every run, the ratio of
the mean throughputs and each process's CPU a flow; exits 1 when the after side keeps less
than ``--budget`` of the throughput.

    python -m loadtests.ab 9c79a8d HEAD --leave-share 0      # issue 18's budget (0.9)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from devstack import backing
from devstack.apps import stop_process, wait_ready

REPO = Path(__file__).resolve().parent.parent
# The order the services start in: each one's peers are up before it.
PACKAGES = ("employee", "notification", "approval_request", "approval_processing")
NAMES = {
    "employee": "employee-service",
    "approval_request": "approval-request-service",
    "approval_processing": "approval-processing-service",
    "notification": "notification-service",
}
URL_FLAGS = {
    "employee": "--employee-url",
    "approval_request": "--approvals-url",
    "approval_processing": "--processing-url",
    "notification": "--notification-url",
}
DATABASE = "erp_ab"


def _url(package: str, base_port: int) -> str:
    return f"http://127.0.0.1:{base_port + PACKAGES.index(package)}"


def _env(package: str, base_port: int) -> dict[str, str]:
    amqp = f"amqp://guest:guest@127.0.0.1:5672/{DATABASE}"
    own = {
        "employee": {"EMPLOYEE_DATABASE_URL": _mysql_url()},
        "approval_request": {
            "APPROVAL_REQUEST_MONGO_DB": DATABASE,
            "APPROVAL_REQUEST_AMQP_URL": amqp,
            "APPROVAL_REQUEST_EMPLOYEE_SERVICE_URL": _url("employee", base_port),
            "APPROVAL_REQUEST_NOTIFICATION_SERVICE_URL": _url("notification", base_port),
        },
        "approval_processing": {
            "APPROVAL_PROCESSING_AMQP_URL": amqp,
            "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": _url("approval_request", base_port),
            "APPROVAL_PROCESSING_NOTIFICATION_SERVICE_URL": _url("notification", base_port),
        },
        "notification": {"NOTIFICATION_AMQP_URL": amqp},
    }[package]
    # Neither side's settings may come from the caller's shell (an OTLP endpoint, a secret).
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ERP_"))}
    return {
        **inherited,
        **own,
        "OTEL_SDK_DISABLED": "true",
        "OTEL_SERVICE_NAME": NAMES[package],
    }


def _mysql_url() -> str:
    return f"mysql+asyncmy://erp:erp@127.0.0.1:3306/{DATABASE}?charset=utf8mb4"


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out, detached, in a temporary worktree removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="erp-ab-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(path), revision],
        cwd=REPO,
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def fresh_databases(tree: Path) -> None:
    """Empty databases for one run, the employee one migrated by ``tree``'s own Alembic."""
    subprocess.run(
        [
            "mariadb",
            "-uroot",
            "-e",
            f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE} CHARACTER SET "
            f"utf8mb4 COLLATE utf8mb4_unicode_ci; GRANT ALL ON {DATABASE}.* TO 'erp'@'127.0.0.1'",
        ],
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "services/employee/alembic.ini", "upgrade", "head"],
        cwd=tree,
        env={**os.environ, "EMPLOYEE_DATABASE_URL": _mysql_url()},
        check=True,
        capture_output=True,
    )
    mongo: MongoClient[dict[str, Any]]
    with MongoClient("mongodb://127.0.0.1:27017") as mongo:
        mongo.drop_database(DATABASE)
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_vhost", DATABASE], check=False, capture_output=True
    )
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", DATABASE], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", DATABASE, "guest", ".*", ".*", ".*"],
        check=True,
    )


def measure(tree: Path, label: str, args: argparse.Namespace, results: Path) -> dict[str, Any]:
    """One run of ``tree``: its services started on fresh databases, its pipeline, stopped."""
    fresh_databases(tree)
    procs: list[subprocess.Popen[bytes]] = []
    logs = results / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for package in PACKAGES:
            # From the tree's own directory: `-m` puts it first on sys.path, ahead of the
            # editable install of this checkout.
            command = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{package}.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                _url(package, args.base_port).rsplit(":", 1)[1],
                "--no-access-log",
                "--log-level",
                "warning",
                *(["--ws", "wsproto"] if package == "notification" else []),
            ]
            with (logs / f"{label}-{package}.log").open("ab") as log:
                procs.append(
                    subprocess.Popen(
                        command,
                        cwd=tree,
                        env=_env(package, args.base_port),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_ready(_url(package, args.base_port), 90, procs[-1])
        out = results / label
        scenario = [
            "--users",
            str(args.users),
            "--duration",
            args.duration,
            "--steps",
            "2",
            "--reject-share",
            "0",
            *(["--leave-share", str(args.leave_share)] if args.leave_share is not None else []),
        ]
        urls = [x for p in PACKAGES for x in (URL_FLAGS[p], _url(p, args.base_port))]
        # The tree's own runner and scenario (exit 1 is a missed threshold: none are set).
        subprocess.run(
            [sys.executable, "-m", "loadtests.run", "pipeline", *scenario, *urls, "--results", out],
            cwd=tree,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
        return summary
    finally:
        for proc in procs:
            stop_process(proc)


@dataclass(frozen=True)
class Run:
    side: str  # "before" or "after"
    flows_per_s: float
    flow_p95_ms: float
    cpu_ms_per_flow: dict[str, float]  # every watched process, CPU ms a completed flow

    @classmethod
    def of(cls, side: str, summary: dict[str, Any]) -> Run:
        figures, cpu = summary["figures"], summary["cpu_seconds"]
        flows = max(int(figures.get("flows", 0)), 1)
        return cls(
            side,
            float(figures.get("flows_per_s", 0.0)),
            float(figures.get("flow_p95_ms", 0.0)),
            {name: 1000 * seconds / flows for name, seconds in cpu.items()},
        )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def report(runs: list[Run], budget: float) -> tuple[list[str], bool]:
    """The lines to print, and whether the after side kept at least ``budget`` of the
    before side's throughput."""
    lines = [
        f"run {n:<2} {run.side:<7}{run.flows_per_s:6.1f} flows/s  p95 {run.flow_p95_ms:6.0f} ms"
        f"  CPU a flow {sum(run.cpu_ms_per_flow.values()):6.1f} ms (every watched process)"
        for n, run in enumerate(runs, start=1)
    ]
    sides = {side: [run for run in runs if run.side == side] for side in ("before", "after")}
    before, after = (_mean([run.flows_per_s for run in sides[s]]) for s in ("before", "after"))
    ratio = after / before if before else 0.0
    ok = ratio >= budget
    lines.append(
        f"throughput: {after:.1f} flows/s after against {before:.1f} before, {ratio:.2f} "
        f"({'within' if ok else 'outside'} the budget of {budget:.2f})"
    )
    lines.append(f"{'CPU ms a flow':<30}{'before':>8}{'after':>8}")
    for name in sorted({name for run in runs for name in run.cpu_ms_per_flow}):
        means = [_mean([run.cpu_ms_per_flow.get(name, 0.0) for run in sides[s]]) for s in sides]
        lines.append(f"  {name:<28}{means[0]:8.1f}{means[1]:8.1f}")
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.ab", description=__doc__)
    parser.add_argument("before", help="a commit (the older code)")
    parser.add_argument("after", nargs="?", default="HEAD", help="a commit (default HEAD)")
    parser.add_argument("--rounds", type=int, default=1, help="each before, after, after, before")
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--users", type=int, default=32, help="concurrent flows")
    parser.add_argument(
        "--leave-share", type=float, help="the LEAVE share of the flows (each side's default)"
    )
    parser.add_argument("--budget", type=float, default=0.9, help="the least ratio allowed")
    parser.add_argument("--base-port", type=int, default=8101, help="the four services' ports")
    parser.add_argument("--results", type=Path, help="folder for every run's results")
    args = parser.parse_args(argv)
    # A sitting stopped with SIGTERM still stops its services and removes its worktrees.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backing.ensure_infra()
    results = args.results or Path(tempfile.mkdtemp(prefix="erp-ab-results-"))
    runs: list[Run] = []
    with worktree(args.before) as before, worktree(args.after) as after:
        trees = {"before": before, "after": after}
        for n, side in enumerate(["before", "after", "after", "before"] * args.rounds, start=1):
            runs.append(Run.of(side, measure(trees[side], f"{n}-{side}", args, results)))
            print(f"run {n} {side}: {runs[-1].flows_per_s:.1f} flows/s", flush=True)
    lines, ok = report(runs, args.budget)
    print("\n".join(lines))
    print(f"results in {results}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
