#!/usr/bin/env bash
# Builds the four service images with no image registry and no package index reachable
# from the build, each input made once and cached (CI only; deploy/ci/README.md):
#   base       a Python image from Debian's packages (debootstrap minbase, docker import)
#   wheelhouse the wheels of deploy/requirements/*.txt, downloaded on the host, each file
#              checked against its lock hash, held in an image the build mounts
#   frontend   the Dockerfile's `# syntax=docker/dockerfile:1`, built from Go source
#   services   deploy/build-images.sh with --network none and pip --no-index (the four
#              services: its gateway target needs Node and nginx images from a registry)
#   infra      the stores, Jaeger and the gateway for deploy/ci/stack.ci.yml (deploy/ci/images/),
#              from Debian's packages and the FerretDB and Jaeger binaries the local stack builds;
#              the gateway with console/dist, built on the host (`erp build-console`)
# Prints each phase's wall time. Heavy steps run at the lowest CPU and I/O priority.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/ci/engine.sh
. deploy/ci/engine.sh
trap 'ci_log "failed: line $LINENO: $BASH_COMMAND"' ERR

cache=${ERP_CI_CACHE:-/var/cache/erp-deploy-ci}
# Debian has no Python 3.12, the version the locks are made for; trixie's 3.13 takes the
# same pins (every lock hash covers each wheel of its version). docs/decisions.md D28.
suite=trixie
python_version=3.13
base_image=erp-ci/python:$python_version-$suite
buildkit_version=v0.34.2
frontend_image=docker/dockerfile:1
locks_key=$(cat deploy/requirements/*.txt | sha256sum | cut -c1-12)
wheelhouse_image=erp-ci/wheelhouse:$python_version-$locks_key
low=(nice -n 19 ionice -c3)

has_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

phase() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  ci_log "phase $name: $((SECONDS - start)) s"
}

engine() {
  ci_install_packages
  ci_start_engine
}

apt_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  printf '%s\n' "$uri"
}

base() {
  has_image "$base_image" && return 0
  local root=$cache/rootfs-$suite
  rm -rf "$root"
  ci_log "debootstrap $suite into $root"
  "${low[@]}" debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3 \
    "$suite" "$root" "$(apt_mirror)" >"$cache/debootstrap.log"
  # What no image needs at run time: package lists and archives, documentation.
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
  tar -C "$root" -c . | "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$base_image" >/dev/null
  rm -rf "$root"
}

wheelhouse() {
  has_image "$wheelhouse_image" && return 0
  local dir=$cache/wheelhouse-$python_version platforms=() lock
  mkdir -p "$dir"
  for minor in $(seq 17 41); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  platforms+=(--platform manylinux2014_x86_64 --platform linux_x86_64)
  for lock in deploy/requirements/*.txt; do
    .venv/bin/python -m pip download --quiet --require-hashes --only-binary=:all: --no-deps \
      --python-version "$python_version" --implementation cp "${platforms[@]}" \
      --dest "$dir" --requirement "$lock"
  done
  printf 'FROM scratch\nCOPY . /\n' |
    DOCKER_BUILDKIT=0 "$docker" build --quiet --tag "$wheelhouse_image" --file - "$dir" >/dev/null
  # Wheelhouses of earlier lock files.
  "$docker" image ls --format '{{.Repository}}:{{.Tag}}' erp-ci/wheelhouse |
    { grep -vx "$wheelhouse_image" || true; } | xargs -r "$docker" rmi >/dev/null
}

frontend() {
  has_image "$frontend_image" && return 0
  local bin=$cache/frontend/bin/dockerfile-frontend src=$cache/frontend/buildkit-$buildkit_version
  if [ ! -x "$bin" ]; then
    # Built inside a copy of the module: `go install pkg@version` refuses a module whose
    # go.mod has exclude directives, as buildkit's has.
    local module
    module=$(GOTOOLCHAIN=local go mod download -json "github.com/moby/buildkit@$buildkit_version" |
      sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$src"
    mkdir -p "$(dirname "$src")" "$(dirname "$bin")"
    cp -r "$module" "$src"
    chmod -R u+w "$src"
    (cd "$src" && GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 "${low[@]}" \
      go build -trimpath -ldflags=-s -o "$bin" ./frontend/dockerfile/cmd/dockerfile-frontend)
    rm -rf "$src"
  fi
  printf '%s\n' \
    'FROM scratch' \
    'COPY dockerfile-frontend /bin/dockerfile-frontend' \
    'LABEL moby.buildkit.frontend.network.none="true"' \
    'LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"' \
    'ENTRYPOINT ["/bin/dockerfile-frontend"]' |
    DOCKER_BUILDKIT=0 "$docker" build --quiet --tag "$frontend_image" --file - "$(dirname "$bin")" \
      >/dev/null
}

services() {
  TARGETS="employee-service approval-request-service approval-processing-service notification-service" \
    DOCKER=$docker DOCKER_BUILDKIT=1 BUILDKIT_PROGRESS=plain "${low[@]}" deploy/build-images.sh \
    --network none \
    --build-arg "PYTHON_IMAGE=$base_image" \
    --build-arg "WHEELHOUSE=$wheelhouse_image" \
    --build-arg PIP_NO_INDEX=1 \
    --build-arg PIP_FIND_LINKS=/wheels \
    >"$cache/build.log" 2>&1 || {
    tail -n 40 "$cache/build.log" >&2
    return 1
  }
}

infra() {
  local context=$cache/infra-context
  rm -rf "$context"
  cp -r deploy/ci/images "$context"
  local binary
  for binary in ferretdb jaeger; do
    cp "$(.venv/bin/python -c "from devstack.backing import ${binary}_binary as b; print(b())")" \
      "$context/$binary"
  done
  # The console's files for the gateway: npm ci and the build each run only when stale.
  "${low[@]}" .venv/bin/erp build-console >>"$cache/build.log" 2>&1 || {
    tail -n 40 "$cache/build.log" >&2
    return 1
  }
  cp -r console/dist "$context/console-dist"
  local target
  for target in mariadb rabbitmq postgres ferretdb jaeger gateway; do
    DOCKER_BUILDKIT=1 BUILDKIT_PROGRESS=plain "${low[@]}" "$docker" build \
      --build-arg "BASE=$base_image" --target "$target" --tag "erp-ci/$target:latest" \
      "$context" >>"$cache/build.log" 2>&1 || {
      tail -n 40 "$cache/build.log" >&2
      return 1
    }
  done
}

mkdir -p "$cache"
: >"$cache/build.log"
start=$SECONDS
phase engine engine
phase base base
phase wheelhouse wheelhouse
phase frontend frontend
phase services services
phase infra infra
ci_log "images built in $((SECONDS - start)) s:"
"$docker" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E "^(${ERP_STACK_IMAGE_PREFIX:-erp}/|erp-ci/|docker/dockerfile)" >&2
