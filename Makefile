# The targets are exactly what CI runs (.ci/run calls `make test`).
PY := .venv/bin/python
ERP := $(PY) -m devstack

.PHONY: venv infra up down status migrate lint format typecheck contracts test test-only loadtest ci-cold deploy-test console browser-test

venv:
	@scripts/venv.sh

# Installs and builds first (apt, Go, the console's npm build: minutes on a new machine, with
# a progress line every 30 s), then starts what the tests need under short start-up timeouts.
# --with-console: nginx, Chromium and Korean fonts for the console's browser tests, and
# console/dist built (each step only when missing or stale).
infra: venv
	$(ERP) install --with-jaeger --with-prometheus --with-console
	$(ERP) infra up --with-jaeger

# `make up REPLICAS=3`: three processes of each service behind a local gateway (nginx) that
# keeps the usual ports 8001-8004. Jaeger and Prometheus too, so the web console's traces and
# pipeline panels show the stack it runs.
REPLICAS ?= 1
up: venv
	$(ERP) up --replicas $(REPLICAS) --with-jaeger --with-prometheus

down:
	$(ERP) down

status:
	$(ERP) status

migrate: venv
	$(ERP) migrate

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: venv
	$(PY) -m mypy

# Pact contracts (contracts/README.md): the consumer tests regenerate the pacts, every
# provider is verified against them, and a pact that differs from the committed one fails.
contracts: infra
	$(PY) -m pytest contracts --ignore=contracts/providers
	$(PY) -m pytest contracts/providers
	@git --no-pager diff --exit-code -- contracts/pacts
	@test -z "$$(git status --porcelain -- contracts/pacts)" || \
		{ git status --short -- contracts/pacts; echo "pacts differ from the committed ones"; exit 1; }

# The whole suite on real MariaDB, RabbitMQ and FerretDB (started here if not running).
test-only: infra
	$(PY) -m pytest

test: lint typecheck contracts test-only

# stack.yml really deployed (deploy/ci/README.md): the images built with no registry, the
# stack on a single-node Swarm of this machine, a flow through its gateway, then removed;
# and k8s/ applied to a local API server with fake nodes (deploy/ci/k8s.sh).
# Needs root (the Docker engine, the first build) and some minutes; not part of `test`.
deploy-test: venv
	ERP_DEPLOY_TEST=1 $(PY) -m pytest tests/deploy/test_swarm_deployment.py tests/deploy/test_k8s_deployment.py

# The web console (console/README.md) built into console/dist, which `erp up` (it builds it
# too) serves at http://127.0.0.1:8080/: npm ci and npm run build, each only when stale.
console: venv
	$(ERP) build-console

# The console's browser tests alone (they are part of `test` too), in Debian's Chromium
# (`erp install --with-console` installs it), rewriting the screenshots under docs/console/.
browser-test: venv console
	ERP_CONSOLE_SCREENSHOTS=1 $(PY) -m pytest tests/console

# Issue 6's benchmark against the running local stack (`make up` first; loadtests/README.md).
# Runs every command and fails at the end if any target was missed; results in loadtests/results/
loadtest: venv
	@status=0; \
	$(PY) -m loadtests.run pipeline --users 32 --duration 60s --steps 2 --reject-share 0 --targets || status=1; \
	$(PY) -m loadtests.run notifications --users 2000 --rate 500 --duration 75s --targets || status=1; \
	$(PY) -m loadtests.inbox_bench --items 100000 --source stub --targets || status=1; \
	$(PY) -m loadtests.inbox_bench --items 100000 --ready-timeout 60 --targets || status=1; \
	exit $$status

# .ci/run as a brand-new machine would run it (purges the servers the project installs,
# empty Go and pip caches, a fresh clone); prints each phase's wall time. README, "Tests".
ci-cold:
	scripts/ci-cold.sh --yes
