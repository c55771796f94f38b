"""Every PromQL query the observability/ files hold, as written and as Grafana sends it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "observability" / "prometheus"
GRAFANA_DIR = REPO / "observability" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yaml"
# What Grafana substitutes for its built-in interval variables, at a 1s scrape interval.
BUILTINS = {"$__rate_interval": "1m", "$__range": "10m", "$__interval": "15s"}


@dataclass(frozen=True)
class Query:
    origin: str  # "service-overview.json / Request rate / A" or "alert ErpHighErrorRate"
    expr: str  # as written in the file
    key: tuple[str, str, str] | None = None  # (dashboard file, panel title, refId)


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


def panel_queries() -> list[Query]:
    queries = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                key = (name, panel["title"], target["refId"])
                queries.append(Query(" / ".join(key), target["expr"], key))
    return queries


def alert_queries() -> list[Query]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [
        Query(f"alert {rule['alert']}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def datasource_queries() -> list[Query]:
    """The Jaeger data source's trace-to-metrics queries ("$$" is a literal "$" there)."""
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    return [
        Query(f"datasource {source['uid']} / {query['name']}", query["query"].replace("$$", "$"))
        for source in sources
        for query in source.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", [])
    ]


def as_sent(expr: str, variables: dict[str, str]) -> str:
    """The expression as Grafana sends it to Prometheus."""
    for name, value in {**BUILTINS, **{f"${n}": v for n, v in variables.items()}}.items():
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    expr = expr.replace("$__tags", 'service_name="employee-service"')
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


# group_left and group_right may stand without a label list.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers left once strings, label matchers,
    ranges and grouping clauses are removed, that are neither functions nor keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][\w:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names
