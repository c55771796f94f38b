"""The console's pipeline panels (console/src/pipeline-panels.json) send the very queries of
the Grafana panels they mirror, so the two cannot drift apart; pure, no browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.telemetry.observability_queries import PROMETHEUS_DIR, panel_queries

PANELS = Path(__file__).resolve().parents[2] / "console" / "src" / "pipeline-panels.json"
# What the issue asks the page to show, by the panel ids of the file.
ASKED = {"flows", "p95", "outbox", "dead-letters"}


def _file() -> dict[str, Any]:
    return dict(json.loads(PANELS.read_text()))


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([sm])", duration)
    assert match, f"unexpected duration {duration}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_each_console_panel_sends_the_expression_of_the_grafana_panel_it_names() -> None:
    grafana = {q.key: q.expr for q in panel_queries()}
    for panel in _file()["panels"]:
        named = panel["grafana"]
        key = (named["dashboard"], named["panel"], named["refId"])
        assert key in grafana, f"{panel['id']}: no Grafana panel {key}"
        assert panel["expr"] == grafana[key], f"{panel['id']} drifted from {key}"


def test_the_panels_are_the_four_the_issue_asks_for_each_titled_in_both_languages() -> None:
    panels = _file()["panels"]
    assert {p["id"] for p in panels} == ASKED
    assert len(panels) == len(ASKED)
    for panel in panels:
        for text in ("title", "unit"):
            assert set(panel[text]) == {"ko", "en"}, panel["id"]
            assert all(panel[text].values()), panel["id"]
        assert panel["combine"] in {"sum", "max"}, panel["id"]


def test_the_rate_interval_is_what_grafana_puts_for_the_scrape_interval() -> None:
    # Grafana's $__rate_interval is at least four scrape intervals of the data source.
    scrape = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["global"]
    assert _seconds(_file()["rateInterval"]) == 4 * _seconds(scrape["scrape_interval"])
