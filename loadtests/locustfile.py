"""`locust -f loadtests/locustfile.py` (web UI, interactive runs): the scenario named by
LOADTEST_SCENARIO (`pipeline`, the default, or `notifications`). Headless benchmark runs
go through `python -m loadtests.run`, which names the scenario file itself."""

from __future__ import annotations

import importlib
import os

_scenario = importlib.import_module(
    f"loadtests.scenarios.{os.environ.get('LOADTEST_SCENARIO', 'pipeline')}"
)
globals().update({name: getattr(_scenario, name) for name in _scenario.__all__})
