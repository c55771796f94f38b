"""`erp up --with-prometheus` scrapes the local processes with the deployed scrape config
(devstack/prometheus.py): every replica by its own port, the rules by absolute path, and a
config Prometheus's own checker accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from devstack import backing, prometheus
from devstack.apps import APP_SERVICES
from devstack.topology import Topology


def test_each_service_job_scrapes_every_replica_by_its_own_port() -> None:
    config = prometheus.scrape_config(prometheus.local_targets(Topology(replicas=3)))

    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs["employee-service"] == ["127.0.0.1:8210", "127.0.0.1:8211", "127.0.0.1:8212"]
    assert jobs["notification-service"] == ["127.0.0.1:8240", "127.0.0.1:8241", "127.0.0.1:8242"]
    assert set(jobs) == {s.name for s in APP_SERVICES}, "no collector runs locally"


def test_one_process_a_service_is_scraped_on_the_usual_ports() -> None:
    config = prometheus.scrape_config(prometheus.local_targets(Topology()))

    targets = [t for job in config["scrape_configs"] for t in job["static_configs"][0]["targets"]]
    assert targets == [f"127.0.0.1:{port}" for port in (8001, 8002, 8003, 8004)]


def test_the_deployed_rules_and_intervals_are_kept() -> None:
    deployed = yaml.safe_load(prometheus.DEPLOYED_CONFIG.read_text())
    config = prometheus.scrape_config(prometheus.local_targets(Topology()))

    assert config["global"] == deployed["global"]
    assert [Path(rule).name for rule in config["rule_files"]] == deployed["rule_files"]
    assert all(Path(rule).is_absolute() and Path(rule).exists() for rule in config["rule_files"])


def test_promtool_accepts_the_local_config(tmp_path: Path) -> None:
    backing.install_missing(prometheus=True)
    path = tmp_path / "prometheus.local.yml"
    config = prometheus.scrape_config(prometheus.local_targets(Topology(replicas=2)))
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    checked = subprocess.run(
        [str(backing.PROMTOOL), "check", "config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
