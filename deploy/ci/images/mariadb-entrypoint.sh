#!/usr/bin/env bash
# First start: a new data directory, the root password, the database and its user, from
# mysql's variables (MYSQL_DATABASE, MYSQL_USER) and secret files (*_PASSWORD_FILE).
set -euo pipefail
data=/var/lib/mysql
init=()
if [ ! -d "$data/mysql" ]; then
  mariadb-install-db --datadir="$data" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  root=$(cat "$MYSQL_ROOT_PASSWORD_FILE")
  password=$(cat "$MYSQL_PASSWORD_FILE")
  cat >/tmp/erp-init.sql <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '$root';
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';
SQL
  init=(--init-file=/tmp/erp-init.sql)
fi
exec mariadbd --datadir="$data" --bind-address=0.0.0.0 --skip-name-resolve "${init[@]}"
