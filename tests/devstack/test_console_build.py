"""The console's build (devstack/console.py `build`): npm ci only when node_modules is missing
or older than the lock file, npm run build only when dist is missing or older than anything
it is built from; nothing at all when both are up to date."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devstack import console

BUILT = 1_700_000_000  # an mtime in seconds (2023): what npm touches now is newer


def _at(path: Path, seconds: int, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (seconds, seconds))
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A console checkout whose node_modules and dist are both up to date."""
    root = tmp_path / "console"
    for name in ("index.html", "package.json", "package-lock.json", "vite.config.ts"):
        _at(root / name, BUILT - 100)
    _at(root / "src" / "pages" / "admin" / "report.tsx", BUILT - 100)
    _at(root / "node_modules" / ".package-lock.json", BUILT - 50)
    _at(root / "dist" / "index.html", BUILT)
    return root


def test_a_missing_target_is_stale(tmp_path: Path) -> None:
    assert console.stale(tmp_path / "absent", [])


def test_a_target_newer_than_every_source_is_not_stale(source: Path) -> None:
    assert not console.needs_install(source)
    assert not console.needs_build(source)


def test_a_changed_file_deep_in_src_makes_dist_stale(source: Path) -> None:
    _at(source / "src" / "pages" / "admin" / "report.tsx", BUILT + 1)
    assert console.needs_build(source)
    assert not console.needs_install(source)


@pytest.mark.parametrize("name", ["index.html", "package-lock.json", "vite.config.ts"])
def test_a_changed_build_input_makes_dist_stale(source: Path, name: str) -> None:
    _at(source / name, BUILT + 1)
    assert console.needs_build(source)


def test_a_lock_file_newer_than_node_modules_asks_for_npm_ci(source: Path) -> None:
    _at(source / "package-lock.json", BUILT - 10)
    assert console.needs_install(source)


def test_without_node_modules_or_dist_both_steps_are_needed(source: Path) -> None:
    (source / "node_modules" / ".package-lock.json").unlink()
    (source / "dist" / "index.html").unlink()
    assert console.needs_install(source)
    assert console.needs_build(source)


@pytest.fixture
def npm_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `npm` first on PATH that records its arguments and does what the real one leaves
    behind (the hidden lock file, dist/index.html), so the decision alone is under test."""
    record = tmp_path / "npm-calls"
    fake = tmp_path / "bin" / "npm"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {record}\n'
        'case "$1" in\n'
        "  ci) mkdir -p node_modules && touch node_modules/.package-lock.json ;;\n"
        "  run) mkdir -p dist && touch dist/index.html ;;\n"
        "esac\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ERP_STATE_DIR", str(tmp_path / "state"))
    return record


def _calls(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def test_an_up_to_date_console_runs_no_npm_at_all(source: Path, npm_calls: Path) -> None:
    console.build(source)
    assert _calls(npm_calls) == []


def test_a_fresh_checkout_gets_npm_ci_then_a_build_and_then_nothing(
    source: Path, npm_calls: Path
) -> None:
    (source / "node_modules" / ".package-lock.json").unlink()
    (source / "dist" / "index.html").unlink()
    console.build(source)
    assert _calls(npm_calls) == ["ci", "run build"]
    console.build(source)
    assert _calls(npm_calls) == ["ci", "run build"]


def test_a_source_change_rebuilds_without_reinstalling(source: Path, npm_calls: Path) -> None:
    _at(source / "src" / "app.tsx", BUILT + 1)
    console.build(source)
    assert _calls(npm_calls) == ["run build"]
