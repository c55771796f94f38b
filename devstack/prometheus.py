"""Prometheus on the local stack: the repository's scrape config (observability/prometheus/
prometheus.yml, the one the deployments use) with each service's job aimed at the local
processes, so the console's pipeline page and the alert rules see the stack `erp up` runs.

The deployed config names cluster addresses (`employee-service:8000`) that do not resolve
here, and the collector's job has no collector to scrape locally, so it goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from devstack.apps import APP_SERVICES
from devstack.process import sub_dir
from devstack.topology import Topology

DEPLOYED_DIR = Path(__file__).resolve().parents[1] / "observability" / "prometheus"
DEPLOYED_CONFIG = DEPLOYED_DIR / "prometheus.yml"


def scrape_config(
    targets: Mapping[str, Sequence[str]], *, interval: str | None = None
) -> dict[str, Any]:
    """The deployed config with every service job (by job name, the service's name) scraping
    `targets[job]` (`host:port`) and nothing else; the rule files by absolute path."""
    config = yaml.safe_load(DEPLOYED_CONFIG.read_text())
    if interval is not None:
        config["global"].update(
            scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
        )
    config["rule_files"] = [str(DEPLOYED_DIR / name) for name in config["rule_files"]]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def local_targets(topology: Topology) -> dict[str, list[str]]:
    """Every process of each service, by its own port: behind a gateway the public ports
    refuse /metrics, as the deployed gateway does."""
    return {
        service.name: [f"127.0.0.1:{r.port}" for r in topology.replicas_of(service)]
        for service in APP_SERVICES
        if service.available
    }


def write_local_config(topology: Topology) -> Path:
    path = sub_dir("prometheus-config") / "prometheus.local.yml"
    path.write_text(yaml.safe_dump(scrape_config(local_targets(topology)), sort_keys=False))
    return path
