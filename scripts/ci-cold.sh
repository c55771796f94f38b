#!/usr/bin/env bash
# Runs .ci/run as a brand-new machine of this kind would: a fresh clone of the committed
# HEAD, empty Go module and build caches and GOPATH, no built binaries, no .venv, no pip
# cache, and the servers the project installs purged first. Prints the wall time of each
# phase at the end (apt, Go builds, venv, lint/types, contracts, tests).
#
# It purges Debian packages (MariaDB, RabbitMQ with Erlang, PostgreSQL, Prometheus, nginx,
# Chromium and the Nanum fonts the browser tests use)
# and stops what this checkout started, so it asks for --yes. Keeps its work folder (the
# clone, its log, its caches) with --keep; removes it otherwise.
set -euo pipefail

yes=no keep=no
for arg in "$@"; do
  case "$arg" in
    --yes) yes=yes ;;
    --keep) keep=yes ;;
    *) echo "usage: scripts/ci-cold.sh --yes [--keep]" >&2; exit 2 ;;
  esac
done
if [ "$yes" != yes ]; then
  echo "scripts/ci-cold.sh purges MariaDB, RabbitMQ, Erlang, PostgreSQL, Prometheus, nginx, Chromium" >&2
  echo "and their data from this machine, then runs .ci/run cold. Run it with --yes." >&2
  exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/erp-ci-cold.XXXXXX)
log="$work/ci.log"
echo "work folder: $work"

# 1. Nothing of ours runs, nothing of ours is installed.
if [ -x "$repo/.venv/bin/python" ]; then
  (cd "$repo" && .venv/bin/python -m devstack down) || true
fi
purge_start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
installed=$(dpkg-query -W -f '${Package} ${Status}\n' 2>/dev/null |
  awk '$NF == "installed" {print $1}' |
  grep -E '^(mariadb-|mysql-common$|galera-|rabbitmq-server$|erlang-|postgresql|prometheus|nginx|chromium|fonts-nanum)' ||
  true)
if [ -n "$installed" ]; then
  # shellcheck disable=SC2086 # one word a package
  apt-get purge -y -q $installed >"$work/purge.log" 2>&1
fi
rm -rf /var/lib/mysql /var/lib/rabbitmq /var/log/rabbitmq /var/lib/postgresql \
  /var/lib/prometheus /etc/rabbitmq /tmp/erp-devstack-install.lock
echo "purged: ${installed//$'\n'/ } ($(($(date +%s) - purge_start)) s)"

# make deploy-test's engine, its Swarm, its local Kubernetes, their images and caches
# (deploy/ci/README.md): stopped by their pid files, then purged like the servers above.
cache=${ERP_CI_CACHE:-/var/cache/erp-deploy-ci}
if [ -x "$repo/deploy/ci/k8s.sh" ]; then
  ERP_CI_CACHE="$cache" "$repo/deploy/ci/k8s.sh" down >/dev/null 2>&1 || true
fi
if [ -s /var/run/docker.pid ]; then
  dockerd_pid=$(cat /var/run/docker.pid)
  kill "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 1
  done
fi
engine=$(dpkg-query -W -f '${Package} ${Status}\n' 2>/dev/null |
  awk '$NF == "installed" {print $1}' |
  grep -E '^(docker\.io|containerd|runc|tini|debootstrap|etcd-server|etcd-client)$' || true)
if [ -n "$engine" ]; then
  # shellcheck disable=SC2086 # one word a package
  apt-get purge -y -q $engine >>"$work/purge.log" 2>&1
fi
awk '$2 ~ "^/var/lib/(docker|containerd)/" {print $2}' /proc/mounts | sort -r |
  xargs -r umount -l 2>/dev/null || true
# This kind of machine mounts a disk of its own at /var/lib/docker: empty it, keep it.
for dir in /var/lib/docker /var/lib/containerd; do
  if [ -d "$dir" ]; then
    find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  fi
done
rm -rf /var/run/docker.pid "$cache"
echo "purged for deploy-test: ${engine//$'\n'/ } and $cache"

# 2. A fresh clone, with a copy of shared/ beside it as CI has, and empty caches.
git clone -q "$repo" "$work/main"
if [ -d "$repo/../shared" ]; then
  cp -r "$repo/../shared" "$work/shared"
fi
mkdir -p "$work/gopath" "$work/gocache" "$work/pip-cache" "$work/uv-cache" "$work/npm-cache"
export GOPATH="$work/gopath" GOMODCACHE="$work/gopath/pkg/mod" GOCACHE="$work/gocache"
export PIP_CACHE_DIR="$work/pip-cache" UV_CACHE_DIR="$work/uv-cache" CI=true
# The console's packages (npm ci) come from the registry too, not from an earlier run's cache.
export npm_config_cache="$work/npm-cache"
unset GOBIN VIRTUAL_ENV

# 3. .ci/run, every line stamped with the seconds since the start.
started=$(date +%s)
set +e
(cd "$work/main" && bash .ci/run </dev/null 2>&1) |
  while IFS= read -r line; do
    printf '%5d %s\n' "$(($(date +%s) - started))" "$line"
  done | tee "$log"
status=${PIPESTATUS[0]}
set -e
total=$(($(date +%s) - started))

# 4. The phases, from the lines make echoes and the installer's `installed:` summary.
python3 - "$log" "$total" <<'PY'
import re, sys
lines = [line.rstrip("\n") for line in open(sys.argv[1], encoding="utf-8", errors="replace")]
total = int(sys.argv[2])
def first(pattern):
    for line in lines:
        if re.search(pattern, line):
            return int(line.split()[0])
    return None
marks = [
    ("venv", 0),
    ("install (apt, Go builds) and start", first(r"-m devstack install")),
    ("lint/types (Kubernetes built meanwhile)", first(r"-m ruff check")),
    ("contracts", first(r"-m pytest contracts --ignore")),
    ("tests", first(r"-m pytest$")),
    ("deploy-test (images, Swarm, Kubernetes)", first(r"ERP_DEPLOY_TEST=1")),
    ("end", total),
]
present = [(name, at) for name, at in marks if at is not None]
print(f"\n{'phase':<40} {'seconds':>8}")
for (name, at), (_, until) in zip(present, present[1:]):
    print(f"{name:<40} {until - at:>8}")
for line in lines:
    found = re.match(r"\s*\d+ installed: (apt|go build|npm): (.*): (\d+) s$", line)
    if found:
        print(f"  of which {found.group(1)}: {found.group(2)[:60]:<45} {found.group(3):>5}")
print(f"{'total':<40} {total:>8}")
PY
echo "exit status of .ci/run: $status (log: $log)"

# 5. Stop what the clone started, then tidy up unless asked to keep.
(cd "$work/main" && [ -x .venv/bin/python ] && .venv/bin/python -m devstack down >/dev/null 2>&1) || true
if [ "$keep" != yes ]; then
  rm -rf "$work"
fi
exit "$status"
