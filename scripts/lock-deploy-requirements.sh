#!/usr/bin/env bash
# Regenerates the container images' lock files, one per service dependency group:
# deploy/requirements/<group>.txt pins the base dependencies plus that group's extra, with
# hashes, for CPython 3.12 on Linux (the python:3.12-slim images), wheels only.
# Run after changing dependencies in pyproject.toml; tests/deploy checks the locks agree.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
[ -x "$uv" ] || scripts/venv.sh

for group in employee approval-request approval-processing notification; do
  "$uv" pip compile pyproject.toml \
    --quiet \
    --extra "$group" \
    --python-version 3.12 \
    --python-platform x86_64-unknown-linux-gnu \
    --only-binary :all: \
    --generate-hashes \
    --custom-compile-command "scripts/lock-deploy-requirements.sh" \
    --output-file "deploy/requirements/$group.txt"
done
