"""CPU time and resident memory of the processes behind local ports, sampled while a load
runs: the benchmark's CPU per flow and memory figures. Remote URLs are simply not watched."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The backing services of the local stack, watched too when the services are local.
BACKING_PORTS = {"mariadb": 3306, "rabbitmq": 5672, "ferretdb": 27017, "postgres": 5442}


def local_port(url: str) -> int | None:
    """The port of `url` when it points at this machine, else None."""
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        return None
    return parts.port or (443 if parts.scheme == "https" else 80)


def listening_pids(ports: Mapping[str, int]) -> dict[str, int]:
    """name -> pid of the process listening on each port (names without one are left out)."""
    wanted = {port: name for name, port in ports.items()}
    found: dict[str, int] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid and conn.laddr.port in wanted:
            found.setdefault(wanted[conn.laddr.port], conn.pid)
    return {name: found[name] for name in ports if name in found}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of `pid` and its children, live (a database's worker
    processes) or reaped; 0 once it is gone."""
    try:
        process = psutil.Process(pid)
        times = [process.cpu_times()]
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times.append(child.cpu_times())
    except psutil.Error:
        return 0.0
    return float(
        sum(t.user + t.system for t in times) + times[0].children_user + times[0].children_system
    )


def rss_bytes(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, summed over its cores."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class Mark:
    at: float
    cpu: dict[str, float]
    machine: float


@dataclass
class Window:
    seconds: float
    cpu: dict[str, float]  # name -> CPU seconds spent in the window
    machine: float  # busy CPU seconds of the whole machine in the window


@dataclass
class ProcessWatch:
    """Samples RSS of named pids once a second; `mark()` snapshots their CPU times."""

    pids: dict[str, int]
    interval: float = 1.0
    on_sample: Callable[[], None] | None = None
    rss_max: dict[str, int] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def mark(self, label: str) -> None:
        self.marks[label] = Mark(
            time.monotonic(),
            {name: cpu_seconds(pid) for name, pid in self.pids.items()},
            machine_busy_seconds(),
        )

    def window(self, start: str, end: str) -> Window | None:
        if start not in self.marks or end not in self.marks:
            return None
        a, b = self.marks[start], self.marks[end]
        return Window(
            b.at - a.at, {name: b.cpu[name] - a.cpu[name] for name in a.cpu}, b.machine - a.machine
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="process-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            self.rss_max[name] = max(self.rss_max.get(name, 0), rss_bytes(pid))
        if self.on_sample is not None:
            self.on_sample()
