"""Load scenarios (Locust) and the benchmark commands behind issue 6: `python -m loadtests.run`
runs a scenario headless and checks thresholds; `python -m loadtests.inbox_bench` measures
the approval inbox's capacity and rebuild time."""

# A scenario logs this once its steady state begins (e.g. every socket open) after
# resetting Locust's statistics; the runner starts its CPU window there too.
MEASURING_MARK = "steady state reached, statistics reset"
