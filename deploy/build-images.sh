#!/usr/bin/env bash
# Builds the four service images and the gateway's (nginx with the web console) from the
# Dockerfile's targets, tagged ${ERP_STACK_IMAGE_PREFIX:-erp}/<target>:<version of
# pyproject.toml>, and pushes them when PUSH=1 (a multi-node Swarm or a real cluster pulls
# them from your registry). Arguments go to every `docker build` (e.g. --build-arg
# PYTHON_IMAGE=...); DOCKER names the client to use; TARGETS (space-separated) builds only
# those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
docker=${DOCKER:-docker}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)
prefix=${ERP_STACK_IMAGE_PREFIX:-erp}
targets=${TARGETS:-employee-service approval-request-service approval-processing-service notification-service gateway}
for service in $targets; do
  image="$prefix/$service:$version"
  "$docker" build "$@" --target "$service" --tag "$image" .
  if [ "${PUSH:-0}" = 1 ]; then
    "$docker" push "$image"
  fi
done
