"""Installs what the local stack needs when a machine lacks it: Debian packages
through apt-get, Go binaries built from the Go module proxy into `$GOBIN`.

Installing is a step of its own (`erp install`), never under a start-up timeout: a
Jaeger build takes minutes on a new 2-core machine. Every step says what it does, says
every 30 s that it is still at it, and is timed; `timings()` is the summary.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.process import log_path, sub_dir, tail

log = logging.getLogger(__name__)

PROGRESS_EVERY = 30.0

_apt_updated = False


@dataclass(frozen=True)
class Step:
    phase: str  # "apt" or "go build"
    what: str
    seconds: float


_timings: list[Step] = []


def timings() -> list[Step]:
    """What this process installed or built, in order, with how long each took."""
    return list(_timings)


class InstallError(RuntimeError):
    """An install or build step failed; the message says which, why, and where the log is."""


def _run_logged(
    phase: str,
    what: str,
    args: Sequence[str],
    *,
    log_name: str,
    env: dict[str, str],
    cwd: Path | None = None,
) -> None:
    """Run `args` with its output in `.run/logs/<log_name>.log`, saying every
    PROGRESS_EVERY seconds that it still runs, and raise InstallError on failure."""
    path = log_path(log_name)
    started = time.monotonic()
    log.info("%s: %s (log: %s)", phase, what, path)
    with path.open("a") as out:
        process = subprocess.Popen(
            list(args), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )
        next_word = started + PROGRESS_EVERY
        while process.poll() is None:
            time.sleep(0.5)
            if time.monotonic() >= next_word:
                log.info("%s: %s, still running after %.0f s", phase, what, next_word - started)
                next_word += PROGRESS_EVERY
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise InstallError(
            f"{phase} failed: {what} exited with {process.returncode} after {seconds:.0f} s.\n"
            f"The last lines of {path}:\n{tail(path, 30)}"
        )
    log.info("%s: %s done in %.0f s", phase, what, seconds)
    _timings.append(Step(phase, what, seconds))


# One lock for the whole machine: apt and `$GOBIN` are shared by every checkout, and two
# test sessions starting at once must not build the same binary side by side.
INSTALL_LOCK = Path(os.environ.get("ERP_INSTALL_LOCK", "/tmp/erp-devstack-install.lock"))


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Hold the machine-wide install lock, saying so while another installer has it."""
    with INSTALL_LOCK.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another install on this machine (lock %s)", INSTALL_LOCK)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apt_install(*packages: str) -> None:
    """`apt-get update` (once per process), then `apt-get install -y packages`."""
    global _apt_updated
    env = {
        **os.environ,
        "DEBIAN_FRONTEND": "noninteractive",
        # Installing a server must not start it: we start our own, on loopback.
        "RUNLEVEL": "1",
    }
    if not _apt_updated:
        _run_logged("apt", "apt-get update", ["apt-get", "update"], log_name="apt", env=env)
        _apt_updated = True
    _run_logged(
        "apt",
        f"apt-get install {' '.join(packages)}",
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        log_name="apt",
        env=env,
    )


def gobin() -> Path:
    """Where `go install` would put binaries: `$GOBIN`, else `$GOPATH/bin`, else ~/go/bin."""
    if os.environ.get("GOBIN"):
        return Path(os.environ["GOBIN"])
    gopath = os.environ.get("GOPATH", "").split(os.pathsep)[0]
    return Path(gopath or Path.home() / "go") / "bin"


def _go_env() -> dict[str, str]:
    flags = f"{os.environ.get('GOFLAGS', '')} -buildvcs=false".strip()
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": flags}


def _runs(binary: Path, probe: list[str]) -> bool:
    try:
        done = subprocess.run([str(binary), *probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def go_binary(
    module: str,
    version: str,
    package: str,
    name: str,
    *,
    probe: list[str],
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Return `$GOBIN/<name>`, building `module@version`'s `package` first if the
    binary is missing or fails `<name> <probe>`.

    `go install pkg@version` cannot do it for these modules: Jaeger's go.mod has
    `replace` directives, and FerretDB panics without a generated version.txt. So
    the module source is fetched with `go mod download`, copied where `extra_files`
    can be added, and built as the main module.
    """
    target = gobin() / name
    if target.exists() and _runs(target, probe):
        return target
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise InstallError(f"building {name} needs the Go toolchain, and `go` is not on PATH")
    env = _go_env()
    download = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        env=env,
        cwd=sub_dir("build"),
        capture_output=True,
        text=True,
        check=False,
    )
    if download.returncode != 0:
        raise InstallError(
            f"go build failed: could not download {module}@{version} from the Go module "
            f"proxy:\n{download.stdout.strip()}\n{download.stderr.strip()}"
        )
    source = Path(json.loads(download.stdout)["Dir"])
    if extra_files:
        work = sub_dir("build") / f"{name}-{version}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work, copy_function=shutil.copyfile)
        for directory, _, _ in os.walk(work):
            os.chmod(directory, 0o700)
        for relative, content in extra_files.items():
            (work / relative).write_text(content)
        source = work
    target.parent.mkdir(parents=True, exist_ok=True)
    _run_logged(
        "go build",
        f"{name} from {module}@{version} (minutes on a new machine; cached after)",
        # Stripped, path-free binaries link faster and are a third smaller.
        [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(target), package],
        log_name=f"build-{name}",
        env=env,
        cwd=source,
    )
    return target
