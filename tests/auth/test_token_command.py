"""`erp token` mints only tokens no production service accepts."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.common.auth import DEV_SECRET, AuthSettings, TokenVerifier

REPO = Path(__file__).resolve().parents[2]


def _local_cluster_secret() -> str:
    overlay = yaml.safe_load(
        (REPO / "k8s" / "overlays" / "local" / "kustomization.yaml").read_text()
    )
    (auth,) = [g for g in overlay["secretGenerator"] if g["name"] == "erp-auth"]
    return str(auth["literals"][0].partition("=")[2])


def erp_token(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", "token", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("secret", [DEV_SECRET, _local_cluster_secret()])
async def test_tokens_are_minted_with_a_development_secret(secret: str) -> None:
    minted = erp_token("7", "--admin", env={"ERP_AUTH_SECRET": secret})
    assert minted.returncode == 0, minted.stderr
    principal = await TokenVerifier(AuthSettings(secret=secret)).verify(minted.stdout.strip())
    assert (principal.employee_id, principal.is_admin) == (7, True)
    with pytest.raises(ValueError, match="ERP_AUTH_SECRET"):
        AuthSettings(secret=secret).refuse_unsafe("production")


@pytest.mark.parametrize(
    "env",
    [
        {"ERP_AUTH_SECRET": secrets.token_urlsafe(32)},
        {"ERP_AUTH_ALGORITHM": "RS256", "ERP_AUTH_JWKS_URL": "http://127.0.0.1:9/jwks.json"},
    ],
    ids=["a secret production accepts", "rs256"],
)
def test_no_token_is_minted_that_a_production_service_would_accept(env: dict[str, str]) -> None:
    refused = erp_token("7", "--admin", env=env)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "identity provider" in refused.stderr
    assert "Traceback" not in refused.stderr
