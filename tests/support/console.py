"""The console's gateway (devstack/console.py) in front of a test layout's services, the
session's Jaeger and, when given, a Prometheus, on a free loopback port, stopped by its pid
when the test is done."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from devstack import console
from devstack.apps import stop_process
from tests.support.layouts import Layout
from tests.support.stack import JAEGER_QUERY, free_port

PACKAGES = ("employee", "approval_request", "approval_processing", "notification")


@contextlib.contextmanager
def serving(
    layout: Layout,
    dist: Path,
    work: Path,
    *,
    prometheus: str | None = None,
    config: dict[str, Any] | None = None,
) -> Iterator[str]:
    """The console's base URL, once its gateway answers. `prometheus` (`host:port`) is what
    `/prometheus/api/v1/query...` reads; None refuses the whole of `/prometheus/`. `config`
    is served as /config.json, as a deployment's gateway serves it; None: no such file."""
    port = free_port()
    upstreams = {p: layout.url(p).removeprefix("http://") for p in PACKAGES}
    nginx = console.start(
        upstreams,
        port=port,
        dist=dist,
        work=work,
        jaeger=JAEGER_QUERY.removeprefix("http://"),
        prometheus=prometheus,
        deployed_config=config,
    )
    assert nginx is not None, "the console's gateway needs nginx and a built console"
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert nginx.poll() is None, (work / "console.log").read_text()
            try:
                httpx.get(f"{base}/index.html", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the console's gateway did not answer"
                time.sleep(0.1)
        yield base
    finally:
        stop_process(nginx)
