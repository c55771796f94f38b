#!/usr/bin/env bash
# Installs Debian's Docker engine and debootstrap when missing and starts dockerd when it
# is not answering. Idempotent; CI only (deploy/ci/README.md). Sourced by the other
# scripts here, which then call the engine's own client as "$docker": the client first
# on PATH may lack buildx, which BuildKit builds need.
set -euo pipefail

docker=/usr/bin/docker

ci_log() { printf '%s [deploy-ci] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

ci_install_packages() {
  local missing=()
  [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  ci_log "installing ${missing[*]}"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null || {
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null
  }
}

ci_start_engine() {
  if "$docker" info >/dev/null 2>&1; then
    return 0
  fi
  ci_log "starting dockerd (log: /var/log/erp-dockerd.log)"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo setsid /usr/sbin/dockerd >>/var/log/erp-dockerd.log 2>&1 </dev/null &
  local deadline=$((SECONDS + 60))
  until "$docker" info >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      ci_log "dockerd did not answer within 60 s; tail of its log:"
      tail -n 20 /var/log/erp-dockerd.log >&2
      return 1
    fi
    sleep 1
  done
}
