"""Installs what the local stack needs when a machine lacks it: Debian packages
through apt-get, Go binaries built from the Go module proxy into `$GOBIN`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from devstack.process import sub_dir

log = logging.getLogger(__name__)

_apt_updated = False


def apt_install(*packages: str) -> None:
    """`apt-get update` (once per process), then `apt-get install -y packages`."""
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        log.info("apt-get update")
        subprocess.run(["apt-get", "update"], env=env, check=True)
        _apt_updated = True
    log.info("apt-get install %s", " ".join(packages))
    subprocess.run(["apt-get", "install", "-y", *packages], env=env, check=True)


def gobin() -> Path:
    return Path(os.environ.get("GOBIN") or Path.home() / "go" / "bin")


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
        raise RuntimeError(f"building {name} needs the Go toolchain, and `go` is not on PATH")
    env = _go_env()
    download = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        env=env,
        cwd=sub_dir("build"),
        capture_output=True,
        text=True,
        check=True,
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
    log.info("building %s from %s@%s (a few minutes on a fresh machine)", name, module, version)
    subprocess.run([go, "build", "-o", str(target), package], env=env, cwd=source, check=True)
    return target
