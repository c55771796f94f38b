"""Fixtures of the deploy checks: the offline validators, installed on first use by
scripts/deploy-tools.sh, and the deployments as those tools load them. None of these
tests needs a Docker engine, a cluster or the running stack."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_model import OVERLAYS, REPO, load_stack, render


@pytest.fixture(scope="session")
def tools() -> dict[str, Path]:
    """kustomize, composecheck and hadolint, by name."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy-tools.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/deploy-tools.sh could not install the validators:\n{done.stderr}")
    return {
        name: Path(path)
        for name, _, path in (line.partition("=") for line in done.stdout.splitlines())
        if path
    }


@pytest.fixture(scope="session")
def swarm(tools: dict[str, Path]) -> dict[str, Any]:
    """stack.yml through docker/cli's stack loader: {config, unsupported, deprecated}."""
    return load_stack(tools["composecheck"], "swarm")


@pytest.fixture(scope="session")
def swarm_stack(swarm: dict[str, Any]) -> dict[str, Any]:
    """The Swarm model of stack.yml (interpolated, with the deploy-time defaults)."""
    return swarm["config"]


@pytest.fixture(scope="session")
def compose_project(tools: dict[str, Path]) -> dict[str, Any]:
    """stack.yml through compose-go's loader, as `docker compose -f stack.yml` sees it."""
    return load_stack(tools["composecheck"], "compose")


@pytest.fixture(scope="session")
def rendered(tools: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered by kustomize, as a list of manifests."""
    return {overlay: render(tools["kustomize"], overlay) for overlay in OVERLAYS}
