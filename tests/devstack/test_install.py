"""The install step: it says what it does while it does it, times it, and a failure names
the step, the reason and the end of its log."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from devstack import install


@pytest.fixture(autouse=True)
def _own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GOBIN", str(tmp_path / "bin"))


def test_a_long_step_says_every_so_often_that_it_is_still_running(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(install, "PROGRESS_EVERY", 0.3)
    before = len(install.timings())
    with caplog.at_level(logging.INFO, logger=install.__name__):
        install._run_logged(
            "go build",
            "a slow step",
            [sys.executable, "-c", "import time; time.sleep(1.2)"],
            log_name="slow",
            env=dict(os.environ),
        )
    still = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(still) >= 2, caplog.text
    assert "go build: a slow step, still running after 0 s" in still[0]
    [step] = install.timings()[before:]
    assert (step.phase, step.what) == ("go build", "a slow step")
    assert step.seconds >= 1.2


def test_a_failed_step_names_itself_its_exit_status_and_the_end_of_its_log() -> None:
    script = "import sys; print('compiling a'); print('undefined: b'); sys.exit(2)"
    before = len(install.timings())
    with pytest.raises(install.InstallError) as failed:
        install._run_logged(
            "go build",
            "jaeger from a module",
            [sys.executable, "-c", script],
            log_name="broken",
            env=dict(os.environ),
        )
    message = str(failed.value)
    assert message.startswith("go build failed: jaeger from a module exited with 2")
    assert "undefined: b" in message
    assert len(install.timings()) == before  # a failed step is not reported as installed


def test_a_module_version_the_proxy_does_not_serve_is_a_plain_error() -> None:
    with pytest.raises(install.InstallError) as failed:
        install.go_binary(
            "github.com/FerretDB/FerretDB",
            "v0.0.0-not-a-version",
            "./cmd/ferretdb",
            "ferretdb-missing",
            probe=["--version"],
        )
    message = str(failed.value)
    assert "could not download github.com/FerretDB/FerretDB@v0.0.0-not-a-version" in message


def test_go_binaries_go_where_go_install_would_put_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOBIN")
    monkeypatch.setenv("GOPATH", f"/opt/gopath{os.pathsep}/other")
    assert install.gobin() == Path("/opt/gopath/bin")
    monkeypatch.delenv("GOPATH")
    assert install.gobin() == Path.home() / "go" / "bin"
