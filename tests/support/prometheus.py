"""A real Prometheus scraping the session's services with the repository's scrape config
(observability/prometheus/prometheus.yml, each target rewritten to the service's local port,
a 1 s scrape interval, the alert rules evaluated), on a free loopback port, stopped by its pid
when done. Installed by the `infra` fixture (`erp install --with-prometheus`)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from devstack import backing, prometheus
from devstack.apps import get_service, stop_process
from tests.support.stack import Stack, free_port

PACKAGE_OF_JOB = {
    get_service(package).name: package
    for package in ("employee", "approval_request", "approval_processing", "notification")
}
READY_SECONDS = 30


def local_scrape_config(stack: Stack) -> dict[str, Any]:
    """The repository's scrape config aimed at the test stack (devstack's own rewrite, the
    one `erp up --with-prometheus` uses), scraping every second."""
    targets = {
        job: [f"127.0.0.1:{stack.ports[package]}"] for job, package in PACKAGE_OF_JOB.items()
    }
    return prometheus.scrape_config(targets, interval="1s")


@contextlib.contextmanager
def running(stack: Stack, workdir: Path) -> Iterator[str]:
    """Prometheus's base URL (http://127.0.0.1:port), once it is ready."""
    config = workdir / "prometheus.local.yml"
    config.write_text(yaml.safe_dump(local_scrape_config(stack), sort_keys=False))
    url = f"http://127.0.0.1:{free_port()}"
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(backing.PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not _answers(f"{url}/-/ready"):
            assert proc.poll() is None, f"Prometheus exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"Prometheus not ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, grace=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
