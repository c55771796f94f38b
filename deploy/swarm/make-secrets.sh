#!/usr/bin/env bash
# Writes the files stack.yml turns into Swarm secrets, into $ERP_STACK_SECRETS
# (default deploy/secrets/, git-ignored): a random password for each store and the
# connection URLs the services read, built from those passwords, and the user file of
# Jaeger's UI. Idempotent: existing passwords are kept (the databases were initialised
# with them), URLs are rewritten.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${ERP_STACK_SECRETS:-deploy/secrets}
# The directory is private; the files are world-readable because `docker compose` (not
# Swarm) bind-mounts them as they are, and the services run as an unprivileged user.
mkdir -p "$dir"
chmod 700 "$dir"
umask 022

password() {  # hex: safe inside a URL and a config file without escaping
  [ -s "$dir/$1" ] || od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/$1"
  cat "$dir/$1"
}

mysql_root=$(password mysql_root_password)
mysql=$(password mysql_password)
mongo=$(password mongo_root_password)
rabbitmq=$(password rabbitmq_password)
password erp_auth_secret >/dev/null
password grafana_admin_password >/dev/null
jaeger_ui=$(password jaeger_ui_password)
: "$mysql_root"

# Jaeger's UI (stack.yml's jaeger-ui) asks for user operator and jaeger_ui_password.
# Written once only: a Swarm secret is immutable, and a new salt would change the file's
# content for the same password, so the next `docker stack deploy` would fail on it.
# SHA-512 crypt, which nginx checks through crypt(3) on Debian and Alpine alike.
if [ ! -s "$dir/jaeger_ui_htpasswd" ]; then
  printf 'operator:%s\n' "$(printf '%s' "$jaeger_ui" | openssl passwd -6 -stdin)" \
    >"$dir/jaeger_ui_htpasswd"
fi

printf 'mysql+asyncmy://erp:%s@mysql:3306/erp?charset=utf8mb4' "$mysql" >"$dir/employee_database_url"
printf 'mongodb://erp:%s@mongo:27017/?authSource=admin' "$mongo" >"$dir/approval_request_mongo_url"
printf 'amqp://erp:%s@rabbitmq:5672/' "$rabbitmq" >"$dir/approval_request_amqp_url"
printf 'amqp://erp:%s@rabbitmq:5672/' "$rabbitmq" >"$dir/approval_processing_amqp_url"
printf 'amqp://erp:%s@rabbitmq:5672/' "$rabbitmq" >"$dir/notification_amqp_url"
printf 'default_user = erp\ndefault_pass = %s\n' "$rabbitmq" >"$dir/rabbitmq_credentials.conf"
echo "secrets written to $dir"
