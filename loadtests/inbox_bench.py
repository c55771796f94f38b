"""`python -m loadtests.inbox_bench --items 100000`: how many waiting items
approval-processing-service holds, in how much memory, and how fast it rebuilds them.

The rebuild reads `/approvals/internal/waiting` page by page. `--source service` (the
default) fills a MongoDB database of its own (`erp_bench`) with open approval documents and
starts an approval-request-service on it: the whole path as deployed. `--source stub`
serves the same pages from memory: the processing service alone. Either way an
approval-processing-service is started on an AMQP vhost of its own, once with nothing
waiting (baseline memory), then twice with the items (start, then restart), each ready
only after its rebuild. Everything started or created is removed again."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from devstack.apps import get_service, is_ready, start_app, stop_process, wait_ready
from loadtests.auth import SERVICE, headers
from loadtests.inbox_data import WaitingSource, fill
from loadtests.procwatch import rss_bytes

MB = 1024 * 1024
MONGO_URL = "mongodb://127.0.0.1:27017"
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"
TARGET_RSS_MB = 300.0
TARGET_REBUILD_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=60)


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(("erp_inbox_rebuild_seconds ", "erp_inbox_items ")):
            name, value = line.split()
            values[name] = float(value)
    return values


def inbox_size(url: str, approver: int) -> tuple[int, float]:
    started = time.perf_counter()
    request = urllib.request.Request(f"{url}/process/{approver}", headers=headers(approver))
    with urllib.request.urlopen(request, timeout=10) as response:
        items = json.loads(response.read())
    return len(items), (time.perf_counter() - started) * 1000


@dataclass
class Start:
    label: str
    ready_seconds: float | None  # spawn to /ready answering 200; None: not within the timeout
    rebuild_seconds: float | None  # erp_inbox_rebuild_seconds
    items: int  # erp_inbox_items
    rss_mb: float  # once ready (or at the timeout)
    peak_rss_mb: float  # highest seen while starting
    inbox_list_ms: float | None  # GET /process/{approverId} of one approver

    def line(self) -> str:
        ready = (
            f"ready after {self.ready_seconds:6.1f}s, rebuild {self.rebuild_seconds:6.2f}s"
            if self.ready_seconds is not None and self.rebuild_seconds is not None
            else "NOT ready within the timeout"
        )
        listed = "" if self.inbox_list_ms is None else f", one inbox in {self.inbox_list_ms:.0f} ms"
        return (
            f"  {self.label:<20} {ready}, {self.items} items, RSS {self.rss_mb:.0f} MB "
            f"(peak {self.peak_rss_mb:.0f}){listed}"
        )


@dataclass
class Processing:
    """Starts approval-processing-service against a waiting-steps source and times it."""

    vhost: str
    log_dir: Path
    ready_timeout: float
    http_timeout: float | None
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, label: str, requests_url: str) -> Start:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "APPROVAL_PROCESSING_AMQP_URL": f"{AMQP_BASE}/{self.vhost}",
            "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": requests_url,
        }
        if self.http_timeout is not None:
            env["APPROVAL_PROCESSING_HTTP_TIMEOUT_SECONDS"] = str(self.http_timeout)
        started = time.perf_counter()
        proc = start_app(get_service("approval_processing"), port, env, self.log_dir)
        self.running.append(proc)
        peak = 0
        ready: float | None = None
        while (elapsed := time.perf_counter() - started) < self.ready_timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"approval-processing-service exited with {proc.returncode}")
            peak = max(peak, rss_bytes(proc.pid))
            if is_ready(url, timeout=5):
                ready = elapsed
                break
            time.sleep(0.25)
        values = metrics(url)
        rss = rss_bytes(proc.pid)
        result = Start(
            label=label,
            ready_seconds=None if ready is None else round(ready, 2),
            rebuild_seconds=None if ready is None else values.get("erp_inbox_rebuild_seconds"),
            items=int(values.get("erp_inbox_items", 0)),
            rss_mb=round(rss / MB, 1),
            peak_rss_mb=round(max(peak, rss) / MB, 1),
            inbox_list_ms=None if ready is None else round(inbox_list_ms(url, approver=2), 1),
        )
        print(result.line(), flush=True)
        self.stop(proc)
        return result

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc, grace=10)
        self.running.remove(proc)


def inbox_list_ms(url: str, approver: int) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(f"{url}/process/{approver}", headers=headers(approver))
    with urllib.request.urlopen(request, timeout=30) as response:
        json.loads(response.read())
    return (time.perf_counter() - started) * 1000


def page_seconds(requests_url: str) -> float:
    """How long approval-request-service takes to answer one rebuild page."""
    url = f"{requests_url}/approvals/internal/waiting?afterRequestId=0&limit=1000"
    started = time.perf_counter()
    request = urllib.request.Request(url, headers=headers(SERVICE))
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
    return time.perf_counter() - started


def start_request_service(
    database: str, vhost: str, log_dir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "APPROVAL_REQUEST_MONGO_URL": MONGO_URL,
        "APPROVAL_REQUEST_MONGO_DB": database,
        "APPROVAL_REQUEST_AMQP_URL": f"{AMQP_BASE}/{vhost}",
    }
    proc = start_app(get_service("approval_request"), port, env, log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, timeout=120, proc=proc)
    return proc, url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.inbox_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=100_000, help="open requests to hold")
    parser.add_argument("--approvers", type=int, default=1000, help="approvers they spread over")
    parser.add_argument("--source", choices=("service", "stub"), default="service")
    parser.add_argument("--database", default="erp_bench", help="MongoDB database (dropped!)")
    parser.add_argument("--vhost", default="erp_bench", help="RabbitMQ vhost (deleted after)")
    parser.add_argument(
        "--http-timeout", type=float, help="processing's HTTP timeout (default: its own)"
    )
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds per start")
    parser.add_argument("--results", type=Path, help="folder for logs and summary.json")
    parser.add_argument("--max-rss-mb", type=float, help="fail above this RSS once rebuilt")
    parser.add_argument("--max-rebuild-s", type=float, help="fail above this restart rebuild")
    parser.add_argument("--targets", action="store_true", help="issue 6's targets: 300 MB, 30 s")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.targets:
        args.max_rss_mb = args.max_rss_mb or TARGET_RSS_MB
        args.max_rebuild_s = args.max_rebuild_s or TARGET_REBUILD_SECONDS
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results: Path = args.results or Path(__file__).parent / "results" / f"inbox-{stamp}"
    results.mkdir(parents=True, exist_ok=True)
    processing = Processing(args.vhost, results, args.ready_timeout, args.http_timeout)
    mongo: MongoClient[dict[str, Any]] = MongoClient(MONGO_URL, tz_aware=True)
    empty_source = WaitingSource(0, 1)
    source: WaitingSource | None = None
    request_service: subprocess.Popen[bytes] | None = None
    print(f"inbox bench: {args.items} open requests over {args.approvers} approvers")
    try:
        rabbitmqctl("delete_vhost", args.vhost, check=False)
        rabbitmqctl("add_vhost", args.vhost)
        rabbitmqctl("set_permissions", "-p", args.vhost, "guest", ".*", ".*", ".*")
        empty_source.start()
        empty = processing.start("empty inbox", empty_source.url)
        if args.source == "stub":
            source = WaitingSource(args.items, args.approvers)
            source.start()
            requests_url = source.url
        else:
            mongo.drop_database(args.database)
            request_service, requests_url = start_request_service(
                args.database, args.vhost, results
            )
            seconds = fill(mongo[args.database], args.items, args.approvers)
            print(f"  filled {args.database}.approvals in {seconds:.1f}s", flush=True)
            print(f"  one page of 1000 waiting steps takes {page_seconds(requests_url):.1f}s")
        first = processing.start(f"start ({args.source})", requests_url)
        again = processing.start(f"restart ({args.source})", requests_url)
    finally:
        for proc in list(processing.running):
            processing.stop(proc)
        if request_service is not None:
            stop_process(request_service, grace=10)
        for server in (empty_source, source):
            if server is not None:
                server.stop()
        mongo.drop_database(args.database)
        mongo.close()
        rabbitmqctl("delete_vhost", args.vhost, check=False)
    return report(args, results, empty, first, again)


def report(args: argparse.Namespace, results: Path, empty: Start, *starts: Start) -> int:
    held = max(s.items for s in starts)
    rss = max(s.rss_mb for s in starts)
    restart = starts[-1]
    if held:
        per_item = (rss - empty.rss_mb) * MB / held
        print(
            f"inbox        {held} of {args.items} items held; RSS {rss:.0f} MB "
            f"(empty {empty.rss_mb:.0f} MB, ~{per_item:.0f} bytes per item; "
            f"peak while rebuilding {max(s.peak_rss_mb for s in starts):.0f} MB)"
        )
    else:
        print(f"inbox        nothing held of {args.items} items (RSS {rss:.0f} MB)")
    rebuild = restart.rebuild_seconds
    print(
        "rebuild      "
        + (
            f"{rebuild:.2f}s after a restart (ready after {restart.ready_seconds:.1f}s)"
            if rebuild is not None
            else f"not finished within {args.ready_timeout:.0f}s"
        )
    )
    # Memory counts only once everything is held; a partial inbox proves nothing.
    checks: list[tuple[str, str, float | None, float]] = [("items", ">=", held, args.items)]
    if args.max_rss_mb is not None:
        checks.append(("rss_mb", "<=", rss if held >= args.items else None, args.max_rss_mb))
    if args.max_rebuild_s is not None:
        checks.append(("rebuild_s", "<=", rebuild, args.max_rebuild_s))
    missed = False
    for name, operator, figure, limit in checks:
        ok = figure is not None and (figure >= limit if operator == ">=" else figure <= limit)
        missed |= not ok
        shown = "not measured" if figure is None else f"{figure:g}"
        print(f"  {name} {operator} {limit:g}: {shown}  {'ok' if ok else 'MISSED'}")
    summary = {"items": args.items, "source": args.source, "starts": [asdict(empty)]}
    summary["starts"] += [asdict(s) for s in starts]
    (results / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results      {results}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
