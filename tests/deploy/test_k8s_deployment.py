"""k8s/ applied to a real API server: etcd, kube-apiserver with Pod Security admission, the
controller manager, the scheduler and kwok's fake nodes, started by deploy/ci/k8s.sh (the
binaries built once and cached). Slow, needs root for its first build, so it runs only when
asked: `make deploy-test` (ERP_DEPLOY_TEST=1). ERP_DEPLOY_KEEP=1 leaves the cluster up."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_model import OVERLAYS, REPO, by_kind

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("ERP_DEPLOY_TEST") != "1",
        reason="applies k8s/ to a local API server: run with `make deploy-test`",
    ),
    pytest.mark.timeout(3600),
]

NAMESPACE = "erp"
CI_MANIFESTS = REPO / "deploy" / "ci" / "k8s"
ROLLOUT_TIMEOUT = "300s"


@dataclass
class Cluster:
    kubeconfig: Path
    kubectl_path: Path

    def kubectl(
        self, *args: str, manifest: str | None = None, timeout: float = 400
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), *args],
            input=manifest,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def must(self, *args: str, manifest: str | None = None) -> str:
        done = self.kubectl(*args, manifest=manifest)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


def _script(command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "deploy" / "ci" / "k8s.sh"), command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _manifest(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


@pytest.fixture(scope="module")
def cluster(rendered: dict[str, list[dict[str, Any]]]) -> Iterator[Cluster]:
    up = _script("up", timeout=3600)
    try:
        # A failed `up` may have started some processes: `down` below stops them too.
        assert up.returncode == 0, up.stderr[-4000:]
        values = dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)
        cluster = Cluster(
            kubeconfig=Path(values["ERP_CI_KUBECONFIG"]),
            kubectl_path=Path(values["ERP_CI_KUBECTL"]),
        )
        # Namespaced objects are dry-run only into a namespace that exists.
        namespaces = by_kind(rendered["production"], "Namespace").values()
        cluster.must("apply", "-f", "-", manifest=_manifest(list(namespaces)))
        yield cluster
    finally:
        if os.environ.get("ERP_DEPLOY_KEEP") != "1":
            down = _script("down", timeout=300)
            assert down.returncode == 0, down.stderr[-4000:]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_passes_server_side_dry_run(
    cluster: Cluster, rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", manifest=_manifest(docs))
    assert done.returncode == 0, done.stderr
    accepted = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(docs), done.stdout
    # The namespace's `warn: restricted` label makes the server flag any workload whose pods
    # "restricted" would refuse.
    assert "PodSecurity" not in done.stderr, done.stderr


def _pod(name: str, security: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "containers": [{"name": "main", "image": "erp/employee-service:0.1.0", **security}]
        },
    }


RESTRICTED = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}


@pytest.mark.parametrize(
    ("name", "security"),
    [
        pytest.param("runs-as-root", {"securityContext": {"runAsUser": 0}}, id="root"),
        pytest.param("privileged", {"securityContext": {"privileged": True}}, id="privileged"),
    ],
)
def test_pod_security_refuses_a_noncompliant_pod_in_the_app_namespace(
    cluster: Cluster, name: str, security: dict[str, Any]
) -> None:
    done = cluster.kubectl("create", "-f", "-", manifest=json.dumps(_pod(name, security)))
    assert done.returncode != 0, done.stdout
    assert 'violates PodSecurity "restricted' in done.stderr, done.stderr


def test_pod_security_admits_a_restricted_pod_in_the_app_namespace(cluster: Cluster) -> None:
    cluster.must(
        "create", "--dry-run=server", "-f", "-", manifest=json.dumps(_pod("restricted", RESTRICTED))
    )


@pytest.fixture(scope="module")
def production(cluster: Cluster, rendered: dict[str, list[dict[str, Any]]]) -> Cluster:
    """The production overlay applied for real, after what a user creates first: the
    Secrets (deploy/k8s/make-secrets.sh), and here the volumes a provisioner would make."""
    cluster.must("apply", "-f", str(CI_MANIFESTS / "volumes.yaml"))
    secrets = subprocess.run(
        ["bash", str(REPO / "deploy" / "k8s" / "make-secrets.sh")],
        env={
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "PATH": f"{cluster.kubectl_path.parent}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert secrets.returncode == 0, secrets.stderr
    cluster.must("apply", "-f", "-", manifest=_manifest(rendered["production"]))
    return cluster


def test_production_deployments_become_available(production: Cluster) -> None:
    production.must(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Available",
        "deployment",
        "--all",
        f"--timeout={ROLLOUT_TIMEOUT}",
    )


def test_production_migration_job_completes(
    production: Cluster, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    for job in by_kind(rendered["production"], "Job"):
        production.must(
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Complete",
            f"job/{job}",
            f"--timeout={ROLLOUT_TIMEOUT}",
        )


def test_production_statefulsets_become_ready(
    production: Cluster, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    statefulsets = by_kind(rendered["production"], "StatefulSet")
    assert statefulsets
    for name in statefulsets:
        production.must(
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            f"statefulset/{name}",
            f"--timeout={ROLLOUT_TIMEOUT}",
        )
    claims = json.loads(production.must("-n", NAMESPACE, "get", "pvc", "-o", "json"))["items"]
    assert {claim["status"]["phase"] for claim in claims} == {"Bound"}, claims
