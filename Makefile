# The targets are exactly what CI runs (.ci/run calls `make test`).
PY := .venv/bin/python
ERP := $(PY) -m services.devstack

.PHONY: venv infra up down status migrate lint format typecheck test test-only

venv:
	@scripts/venv.sh

infra: venv
	$(ERP) infra up

up: venv
	$(ERP) up

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

# The whole suite on real MariaDB, RabbitMQ and FerretDB (started here if not running).
test-only: infra
	$(PY) -m pytest

test: lint typecheck test-only
