#!/usr/bin/env bash
# FerretDB on the PostgreSQL at $FERRETDB_POSTGRES_HOST, with the password from a secret
# file, so that no password sits in the service's environment.
set -euo pipefail
password=$(cat "$FERRETDB_POSTGRES_PASSWORD_FILE")
export FERRETDB_POSTGRESQL_URL="postgres://$FERRETDB_POSTGRES_USER:$password@$FERRETDB_POSTGRES_HOST:5432/$FERRETDB_POSTGRES_DB"
exec ferretdb --listen-addr=:27017 --debug-addr=:8088 --telemetry=disable --state-dir=- "$@"
