#!/bin/sh
# Entry point of every service image. Swarm mounts secrets as files named after the
# variable they hold (/run/secrets/employee_database_url); the settings classes read the
# environment, so each such file is exported as its upper-cased name, unless that
# variable is already set. Then the command runs as PID 1 (exec), so it gets SIGTERM.
set -eu
secrets_dir=${ERP_SECRETS_DIR:-/run/secrets}
if [ -d "$secrets_dir" ]; then
  for file in "$secrets_dir"/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file" | tr '[:lower:]' '[:upper:]')
    case "$name" in
      '' | [0-9]* | *[!A-Z0-9_]*) continue ;;
    esac
    if printenv "$name" >/dev/null; then
      continue
    fi
    value=$(cat "$file")
    export "$name=$value"
  done
fi
exec "$@"
