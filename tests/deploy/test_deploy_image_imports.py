"""Each service image holds what its service imports: its app module imports in a process
where only the distributions of the service's lock file (deploy/requirements/<group>.txt)
can be imported, as in its image."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.deploy.deploy_model import APPS, REPO, group_of

# Run in a fresh interpreter: a finder refuses any module whose distribution is not locked.
_IMPORT_WITH_ONLY = """
import importlib, importlib.abc, importlib.metadata, re, sys

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

allowed = set(sys.argv[2].split(","))
owners = importlib.metadata.packages_distributions()

class OnlyLocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        dists = {canonical(d) for d in owners.get(name.partition(".")[0], [])}
        if dists and not dists & allowed:
            raise ModuleNotFoundError(f"{name} comes from {sorted(dists)}, not in the lock")
        return None

sys.meta_path.insert(0, OnlyLocked())
for module in sys.argv[1].split(","):
    importlib.import_module(module)
"""


def locked_distributions(group: str) -> set[str]:
    text = (REPO / "deploy" / "requirements" / f"{group}.txt").read_text()
    names = re.findall(r"^([A-Za-z0-9_.\-]+)==", text, flags=re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower() for name in names}


@pytest.mark.parametrize("service", APPS)
def test_each_service_starts_with_only_the_distributions_its_image_holds(service: str) -> None:
    package = APPS[service].package
    modules = [f"services.{package}.app"]
    allowed = locked_distributions(group_of(APPS[service])) | {"erp-services"}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITH_ONLY, ",".join(modules), ",".join(sorted(allowed))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
