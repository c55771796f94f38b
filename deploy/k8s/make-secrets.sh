#!/usr/bin/env bash
# Creates the Secrets that k8s/overlays/production expects in namespace erp, each with
# random values, and leaves any that already exists alone (the databases were initialised
# with its values). The values are hex: they go into connection URLs without escaping.
# Needs kubectl pointed at the target cluster.
set -euo pipefail
namespace=${ERP_NAMESPACE:-erp}

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

create() {  # create NAME KEY...
  local name=$1
  shift
  if kubectl -n "$namespace" get secret "$name" >/dev/null 2>&1; then
    echo "secret/$name exists, kept"
    return
  fi
  local args=()
  for key in "$@"; do
    args+=("--from-literal=$key=$(random)")
  done
  kubectl -n "$namespace" create secret generic "$name" "${args[@]}"
}

# A namespace made here already enforces Pod Security "restricted", as k8s/base/namespace.yaml
# does, and is applied (not created), so the overlay's apply later adopts it without a warning.
if ! kubectl get namespace "$namespace" >/dev/null 2>&1; then
  kubectl create namespace "$namespace" --dry-run=client -o yaml |
    kubectl label --local -f - -o yaml \
      pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted |
    kubectl apply -f -
fi
create mysql-credentials password root-password
create mongo-credentials root-password
create rabbitmq-credentials password
create erp-auth secret
create grafana-admin password
