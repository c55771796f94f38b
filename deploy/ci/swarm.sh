#!/usr/bin/env bash
# stack.yml with deploy/ci/stack.ci.yml on a single-node Swarm of this machine (CI only;
# deploy/ci/README.md). The images must exist (deploy/ci/images.sh).
#   deploy/ci/swarm.sh up     deploy, wait for the migration job and every health check,
#                             print the published ports as ERP_CI_PORT_<port>=<host port>
#   deploy/ci/swarm.sh down   remove the stack, its volumes, and the Swarm if this made it
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/ci/engine.sh
. deploy/ci/engine.sh
trap 'ci_log "failed: line $LINENO: $BASH_COMMAND"' ERR

cache=${ERP_CI_CACHE:-/var/cache/erp-deploy-ci}
stack=${ERP_CI_STACK:-erp-ci}
secrets=$cache/secrets
timeout=${ERP_CI_DEPLOY_TIMEOUT:-600}
# stack.yml, like current Compose files, has no `version:`, which the 20.10 client of
# Debian's engine requires: deploy with a newer client when one is on PATH.
stack_client=$(command -v docker)

free_port() {
  .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

swarm_init() {
  [ "$("$docker" info --format '{{.Swarm.LocalNodeState}}')" = active ] && return 0
  "$docker" swarm init --advertise-addr 127.0.0.1 >/dev/null
  touch "$cache/swarm-made-here"
}

write_secrets() {
  ERP_STACK_SECRETS=$secrets deploy/swarm/make-secrets.sh >/dev/null
  # FerretDB 1.x takes no credentials from its clients (deploy/ci/stack.ci.yml).
  printf 'mongodb://mongo:27017/' >"$secrets/approval_request_mongo_url"
}

# Every task of the stack running, healthy where it has a health check, and the job done.
ready() {
  local line mode replicas
  while IFS='|' read -r mode replicas; do
    case $mode in
      *job) [[ $replicas == *"(1/1 completed)"* ]] || return 1 ;;
      *) [ "${replicas%%/*}" = "${replicas##*/}" ] || return 1 ;;
    esac
  done < <("$docker" service ls --filter "label=com.docker.stack.namespace=$stack" \
    --format '{{.Mode}}|{{.Replicas}}')
  while read -r line; do
    [[ $line == *"(health: starting)"* || $line == *"(unhealthy)"* ]] && return 1
  done < <("$docker" ps --filter "label=com.docker.stack.namespace=$stack" --format '{{.Status}}')
  return 0
}

up() {
  ci_install_packages
  ci_start_engine
  mkdir -p "$cache"
  swarm_init
  "$docker" node update --label-add erp-data=true "$("$docker" info --format '{{.Swarm.NodeID}}')" >/dev/null
  write_secrets
  local port
  for port in 8001 8002 8003 8004 8080 16686; do
    export "ERP_CI_PORT_$port=$(free_port)"
  done
  .venv/bin/python deploy/ci/render_stack.py stack.yml deploy/ci/stack.ci.yml |
    ERP_STACK_SECRETS=$secrets "$stack_client" stack deploy --resolve-image never --prune \
      --compose-file - "$stack" >&2
  local start=$SECONDS
  until ready; do
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      ci_log "the stack was not ready within $timeout s:"
      "$docker" service ls --filter "label=com.docker.stack.namespace=$stack" >&2
      "$docker" stack ps --no-trunc "$stack" | grep -v ' Running ' >&2 || true
      return 1
    fi
    sleep 3
  done
  ci_log "stack $stack ready in $((SECONDS - start)) s"
  for port in 8001 8002 8003 8004 8080 16686; do
    local name=ERP_CI_PORT_$port
    echo "$name=${!name}"
  done
  echo "ERP_CI_SECRETS=$secrets"
}

down() {
  "$docker" info >/dev/null 2>&1 || return 0
  if "$docker" stack ls --format '{{.Name}}' 2>/dev/null | grep -qx "$stack"; then
    "$docker" stack rm "$stack" >&2
  fi
  # Volumes are removable once the stack's containers are gone. Swarm leaves a finished
  # job's container behind: removed here once nothing of the stack runs.
  local deadline=$((SECONDS + 120)) label="label=com.docker.stack.namespace=$stack"
  while [ -n "$("$docker" ps -q --filter "$label")" ] && [ $SECONDS -lt $deadline ]; do
    sleep 2
  done
  "$docker" ps -aq --filter "$label" | xargs -r "$docker" rm --force >/dev/null
  "$docker" volume ls -q --filter "$label" | xargs -r "$docker" volume rm >/dev/null
  if [ -e "$cache/swarm-made-here" ]; then
    "$docker" swarm leave --force >/dev/null
    rm -f "$cache/swarm-made-here"
  fi
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
