"""Process plumbing for the local stack: the state dir, pid files, port probes
and stopping a process by the pid we recorded. Standard library only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def state_dir() -> Path:
    """`<repo>/.run`, or `$ERP_STATE_DIR`: pid files, logs and data dirs."""
    path = Path(os.environ.get("ERP_STATE_DIR") or REPO_ROOT / ".run")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sub_dir(name: str) -> Path:
    path = state_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path(name: str) -> Path:
    return sub_dir("logs") / f"{name}.log"


def pid_path(name: str) -> Path:
    return sub_dir("pids") / f"{name}.pid"


def write_pid(name: str, pid: int) -> None:
    pid_path(name).write_text(f"{pid}\n")


def read_pid(name: str) -> int | None:
    """The recorded pid, or None; 0 means "we started it, pid unknown"."""
    try:
        return int(pid_path(name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def clear_pid(name: str) -> None:
    pid_path(name).unlink(missing_ok=True)


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something listens on 127.0.0.1:`port`; fail early if `process` dies."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout:.0f}s")
        time.sleep(0.2)


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def pid_alive(pid: int, expect: str = "") -> bool:
    """True if `pid` runs and (when given) its command line contains `expect`,
    so a recycled pid is never taken for ours."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = ""
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z" and expect in cmdline(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, expect: str = "", grace: float = 5.0) -> None:
    """SIGTERM `pid`, then SIGKILL after `grace` seconds; only if it is still ours."""
    if not pid_alive(pid, expect):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    _reap(pid)


def spawn(
    name: str,
    args: Sequence[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path = REPO_ROOT,
) -> subprocess.Popen[bytes]:
    """Start `args` in its own session, output to `log` (default `.run/logs/<name>.log`)."""
    log = log or log_path(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
