"""The README's walkthroughs and `erp demo`'s printed flow, run as printed against a real
stack of their own (fresh databases, so the first employees get ids 1, 2 and 3 as the
README says). Only the host:port of each service changes, to the stack's free ports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.auth import token_for
from tests.support.stack import TEST_DB, Stack, create_databases, drop_databases, free_port
from tests.support.walkthrough import (
    Shell,
    bash_blocks,
    commands,
    moved,
    run_walkthrough,
    section,
)

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
PACKAGES = ("notification", "employee", "approval_request", "approval_processing")
LOCAL_PORTS = {
    "employee": 8001,
    "approval_request": 8002,
    "approval_processing": 8003,
    "notification": 8004,
}


@pytest.fixture(scope="module")
def fresh_stack(infra: None) -> Iterator[Stack]:
    db = f"{TEST_DB}_readme"
    create_databases(db)
    log_dir = REPO / ".run" / "test-logs" / "readme"
    log_dir.mkdir(parents=True, exist_ok=True)
    running = Stack(log_dir=log_dir, ports={p: free_port() for p in PACKAGES}, db=db)
    try:
        for package in PACKAGES:
            running.start(package)
        yield running
    finally:
        running.stop_all()
        drop_databases(db)


def _on(stack: Stack, text: str) -> str:
    """The same text, with each service's local address replaced by the stack's."""
    return moved(
        text,
        {port: stack.url(package).removeprefix("http://") for package, port in LOCAL_PORTS.items()},
    )


class Watcher:
    """`erp watch` as a background process, its JSON lines collected as they arrive."""

    def __init__(self, command: str, url: str) -> None:
        args = command.split("#")[0].split()
        self.lines: list[dict[str, object]] = []
        self._process = subprocess.Popen(
            [*args, "--url", url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(json.loads(line))

    def kinds(self) -> list[tuple[object, object]]:
        return [(line["type"], line.get("finalStatus")) for line in self.lines]

    def wait_for(self, expected: list[tuple[object, object]], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.kinds()) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.kinds() == expected

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def _wait_for_connections(notification_url: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    pattern = re.compile(r"^erp_websocket_connections (\S+)$", re.MULTILINE)
    while True:
        found = pattern.search(httpx.get(f"{notification_url}/metrics", timeout=5).text)
        if found and float(found.group(1)) >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} watchers connected"
        time.sleep(0.1)


@pytest.fixture
def shell() -> Iterator[Shell]:
    running = Shell(REPO, dict(os.environ))
    yield running
    running.close()


def test_readme_walkthroughs_run_as_printed(fresh_stack: Stack, shell: Shell) -> None:
    employee_api = bash_blocks(section(README, "The employee API in five commands"))
    assert len(employee_api) == 1
    run_walkthrough(shell, _on(fresh_stack, employee_api[0]))

    watch_block, flow = bash_blocks(section(README, "The whole leave flow, step by step"))
    [watch_command] = commands(watch_block)
    assert watch_command.text.startswith(".venv/bin/erp watch 1")
    url = fresh_stack.url("notification")
    requester = Watcher(watch_command.text, url)
    approver = Watcher(watch_command.text.replace("watch 1", "watch 2"), url)
    try:
        # A watcher sees only what is pushed while it is connected: wait until both are.
        _wait_for_connections(url, 2)
        run_walkthrough(shell, _on(fresh_stack, flow))
        requester.wait_for(
            [
                ("approval_result", "in_progress"),
                ("approval_result", "approved"),
                ("leave_confirmed", "approved"),
            ]
        )
        approver.wait_for([("approval_assigned", None), ("approval_result", "in_progress")])
    finally:
        requester.stop()
        approver.stop()

    _browser_snippet_replays(fresh_stack, section(README, "The whole leave flow, step by step"))

    [leave] = bash_blocks(section(README, "Leave balances, holidays and reservations"))
    run_walkthrough(shell, _on(fresh_stack, leave))

    [workflow] = bash_blocks(section(README, "Comments, withdrawal, reassignment and history"))
    run_walkthrough(shell, _on(fresh_stack, workflow))

    [auth] = bash_blocks(section(README, "Authentication and authorization"))
    run_walkthrough(shell, _on(fresh_stack, auth))


def _browser_snippet_replays(stack: Stack, text: str) -> None:
    """The README's browser snippet, in Node's browser-compatible WebSocket, replays
    employee 1's notifications with the subprotocol token."""
    [snippet] = re.findall(r"```js\n(.*?)```", text, re.DOTALL)
    script = f"const token = {json.dumps(token_for(1))};\n{_on(stack, textwrap.dedent(snippet))}"
    node = subprocess.Popen(
        ["node", "--experimental-websocket", "--no-warnings", "-e", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    threading.Thread(target=lambda: seen.extend(node.stdout or []), daemon=True).start()
    deadline = time.monotonic() + 30
    try:
        while "leave_confirmed" not in "".join(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        node.terminate()
        node.wait(timeout=10)
    printed = "".join(seen)
    assert printed.count("approval_result") == 2, printed
    assert "leave_confirmed" in printed, printed


def test_erp_demo_prints_a_leave_flow_that_runs(fresh_stack: Stack, shell: Shell) -> None:
    urls = {
        "--employee-url": "employee",
        "--approvals-url": "approval_request",
        "--processing-url": "approval_processing",
        "--notification-url": "notification",
    }
    options = [part for o, p in urls.items() for part in (o, fresh_stack.url(p))]
    printed = subprocess.run(
        [sys.executable, "-m", "devstack", "demo", *options],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    ran = run_walkthrough(shell, printed)
    assert len(ran) >= 9, printed
    final = [
        output for command, output in ran if command.claim == '{"finalStatus": "approved", ...}'
    ]
    assert final, printed
