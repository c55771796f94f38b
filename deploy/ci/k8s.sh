#!/usr/bin/env bash
# A real Kubernetes control plane on this machine, with fake nodes (CI only;
# deploy/ci/README.md). Each tool is built or installed once and cached:
#   etcd                  Debian's etcd-server package
#   kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl when the machine
#                         has none) from the k8s.io/kubernetes module, its ./staging
#                         replace directives swapped for the published k8s.io modules
#   kwok                  fake nodes and pod life cycles, by go install
#   deploy/ci/k8s.sh build   only build and install the tools
#   deploy/ci/k8s.sh up      start etcd, the API server (Pod Security admission on), the
#                            controllers, the scheduler and kwok with two fake nodes, all on
#                            127.0.0.1; print ERP_CI_KUBECONFIG=<path>, ERP_CI_KUBECTL=<path>
#   deploy/ci/k8s.sh down    stop what `up` started (by its pid files), remove its data
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/ci/engine.sh
. deploy/ci/engine.sh
trap 'ci_log "failed: line $LINENO: $BASH_COMMAND"' ERR

cache=${ERP_CI_CACHE:-/var/cache/erp-deploy-ci}
# Of the approved releases, the closest to the kubectl this kind of machine carries (v1.32),
# so the client's version skew stays small.
k8s_version=v1.34.4
staging_version=v0${k8s_version#v1}
kwok_version=v0.8.0
bin=$cache/k8s-$k8s_version/bin
stages=$cache/k8s-$k8s_version/kwok-$kwok_version-stages.yaml
state=$cache/k8s
logs=$cache/k8s-logs
low=(nice -n 19 ionice -c3)
py=$PWD/.venv/bin/python
export GOTOOLCHAIN=local

go_env() {
  GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 "${low[@]}" "$@"
}

install_etcd() {
  command -v etcd >/dev/null && return 0
  ci_log "installing etcd-server"
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    etcd-server >/dev/null || {
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      etcd-server >/dev/null
  }
  # The package starts a system etcd on the default ports: this cluster runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
}

kubectl_bin() {
  command -v kubectl 2>/dev/null || printf '%s\n' "$bin/kubectl"
}

build_kubernetes() {
  local programs=(kube-apiserver kube-controller-manager kube-scheduler) missing=() p
  command -v kubectl >/dev/null || programs+=(kubectl)
  for p in "${programs[@]}"; do [ -x "$bin/$p" ] || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local start=$SECONDS module src=$cache/k8s-src-$k8s_version
  ci_log "building ${missing[*]} $k8s_version (minutes; log: $cache/k8s-build.log)"
  module=$(go mod download -json "k8s.io/kubernetes@$k8s_version" |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$src"
  cp -r "$module" "$src"
  chmod -R u+w "$src"
  # The module's staging/ is not in its zip (each is a module of its own): take the
  # published modules of the same release instead.
  local edits=() path
  while read -r path; do
    edits+=("-replace=$path=$path@$staging_version")
  done < <(cd "$src" && GOWORK=off go mod edit -json |
    "$py" -c 'import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])')
  (cd "$src" && GOWORK=off go mod edit "${edits[@]}")
  local pkg=k8s.io/component-base/version client=k8s.io/client-go/pkg/version flags minor
  minor=${k8s_version#v1.}
  minor=${minor%%.*}
  flags="-s -w"
  for v in "$pkg" "$client"; do
    flags+=" -X $v.gitVersion=$k8s_version -X $v.gitMajor=1 -X $v.gitMinor=$minor"
    flags+=" -X $v.gitTreeState=clean"
  done
  mkdir -p "$bin" "$src/out"
  (cd "$src" && go_env go build -trimpath -ldflags "$flags" -o out/ \
    "${missing[@]/#/./cmd/}" >>"$cache/k8s-build.log" 2>&1) || {
    tail -n 30 "$cache/k8s-build.log" >&2
    return 1
  }
  # Whole binaries only: an interrupted build leaves nothing that looks built.
  mv "$src"/out/* "$bin/"
  rm -rf "$src"
  ci_log "phase kubernetes build: $((SECONDS - start)) s"
}

# kwok's own stages: nodes turn Ready and keep a lease, pods turn Ready, a Job's pods
# Succeed, deleted pods go.
kwok_stages=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)

install_kwok() {
  [ -x "$bin/kwok" ] && [ -f "$stages" ] && return 0
  local start=$SECONDS
  ci_log "installing kwok $kwok_version"
  GOBIN=$bin go_env go install "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" \
    >>"$cache/k8s-build.log" 2>&1 || {
    tail -n 30 "$cache/k8s-build.log" >&2
    return 1
  }
  local module stage
  module=$(go mod download -json "sigs.k8s.io/kwok@$kwok_version" |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  for stage in "${kwok_stages[@]}"; do
    cat "$module/kustomize/stage/$stage"
    echo ---
  done >"$stages.new"
  mv "$stages.new" "$stages"
  ci_log "phase kwok install: $((SECONDS - start)) s"
}

build() {
  mkdir -p "$cache"
  install_etcd
  build_kubernetes
  install_kwok
}

# Ports below the kernel's ephemeral range: one the kernel hands out (bind to 0) may be
# taken as an outgoing connection's local port before the server binds it.
free_ports() {
  "$py" - "$1" <<'PY'
import random, socket, sys
floor = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ports = set()
while len(ports) < int(sys.argv[1]):
    port = random.randrange(max(1024, floor - 12000), floor)
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
    ports.add(port)
print(*ports)
PY
}

start() { # start NAME COMMAND...: in the background, its pid kept for `down`
  local name=$1
  shift
  setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name"
}

wait_for() { # wait_for WHAT SECONDS COMMAND...
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      ci_log "$what did not come up within the time; logs in $logs"
      return 1
    fi
    sleep 1
  done
}

make_keys() {
  local pki=$state/pki
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=erp-ci-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/san.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/san.ext" -out "$pki/apiserver.crt" 2>/dev/null
  # The key that signs ServiceAccount tokens, made here rather than shipped.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s,erp-ci-admin,erp-ci-admin,system:masters\n' "$token" >"$pki/tokens.csv"
}

write_kubeconfig() {
  cat >"$kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: erp-ci
    cluster:
      server: https://127.0.0.1:$apiserver_port
      certificate-authority: $state/pki/ca.crt
users:
  - name: erp-ci-admin
    user:
      token: $token
contexts:
  - name: erp-ci
    context: {cluster: erp-ci, user: erp-ci-admin}
current-context: erp-ci
YAML
}

kubectl_ci() { "$(kubectl_bin)" --kubeconfig "$kubeconfig" "$@"; }

running() {
  [ -f "$kubeconfig" ] && kubectl_ci get --raw /readyz >/dev/null 2>&1
}

report() {
  printf 'ERP_CI_KUBECONFIG=%s\nERP_CI_KUBECTL=%s\n' "$kubeconfig" "$(kubectl_bin)"
}

up() {
  build
  kubeconfig=$state/kubeconfig
  if running; then
    report
    return 0
  fi
  [ -d "$state" ] && down
  local start=$SECONDS etcd_port peer_port apiserver_port pki=$state/pki
  mkdir -p "$state/pids" "$state/etcd" "$logs"
  chmod 700 "$state"
  rm -f "$logs"/*.log
  read -r etcd_port peer_port apiserver_port <<<"$(free_ports 3)"
  make_keys
  start etcd etcd --name erp-ci --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "erp-ci=http://127.0.0.1:$peer_port"
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"
  # PodSecurity is in the default admission plugins; named here because the tests rely on
  # it. Privileged containers are allowed as on most clusters, so that Pod Security, not
  # this flag, is what refuses them in a "restricted" namespace. No endpoint for the
  # `kubernetes` Service: Endpoints refuse 127.0.0.1, and no pod here really runs.
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --enable-admission-plugins PodSecurity \
    --allow-privileged=true --profiling=false \
    --endpoint-reconciler-type none
  write_kubeconfig
  wait_for kube-apiserver 120 kubectl_ci get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$kubeconfig" \
    --secure-port 0 --leader-elect=false --cluster-name erp-ci \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --profiling=false
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$kubeconfig" \
    --secure-port 0 --leader-elect=false --profiling=false
  kubectl_ci apply -f deploy/ci/k8s/nodes.yaml >/dev/null
  start kwok "$bin/kwok" --kubeconfig "$kubeconfig" --config "$stages" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 10.0.0.1 --node-lease-duration-seconds 40
  wait_for "the fake nodes" 120 kubectl_ci wait --for=condition=Ready node --all --timeout=5s
  # Pods need their namespace's default ServiceAccount, made by the controller manager.
  wait_for "the controller manager" 120 kubectl_ci -n default get serviceaccount default
  ci_log "phase cluster up: $((SECONDS - start)) s"
  report
}

stop() { # stop NAME: the process `up` started under NAME, if it still runs
  local file=$state/pids/$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
}

down() {
  local name
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop "$name"
  done
  rm -rf "$state"
}

case ${1:-} in
build) build ;;
up) up ;;
down) down ;;
*)
  echo "usage: $0 build|up|down" >&2
  exit 2
  ;;
esac
