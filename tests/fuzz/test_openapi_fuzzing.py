"""Property-based fuzzing of every service's OpenAPI schema (Schemathesis) with valid
credentials: no 5xx, and every documented response matches its schema. Bounded and
deterministic so it can run in CI on every change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.auth import as_admin, as_service, as_user
from tests.support.stack import Stack

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
EXAMPLES = "15"

# Each service under the credentials its callers really hold; endpoints a credential may
# not use still get fuzzed (and must answer 401/403, never 5xx).
RUNS = [
    ("employee", as_admin(), None),
    ("employee", as_service(), "/internal/"),
    ("approval_request", as_admin(), None),
    ("approval_request", as_service(), "/internal/"),
    ("approval_processing", as_user(1), None),
    ("notification", as_service(), None),
]


@pytest.mark.parametrize(
    ("package", "headers", "only"),
    RUNS,
    ids=[f"{p}-{'internal' if o else 'public'}" for p, _, o in RUNS],
)
def test_fuzzing_finds_no_server_error_and_no_schema_drift(
    stack: Stack,
    tmp_path: Path,
    package: str,
    headers: dict[str, str],
    only: str | None,
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{stack.url(package)}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--generation-deterministic",
        "--header",
        f"Authorization:{headers['Authorization']}",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if only:
        command += ["--include-path-regex", only]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
