#!/bin/bash
# Entrypoint of the stand-in for the official `postgres` image that .ci/compose-smoke builds from
# Debian's postgresql package (no registry is reachable in CI). It honours the part of the
# official image's contract docker-compose.scale.yml uses: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, PGDATA (default /var/lib/postgresql/data) and /docker-entrypoint-initdb.d/*.sql
# run once on a fresh volume; then it runs the server in the foreground as user postgres.
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDATA=${PGDATA:-/var/lib/postgresql/data}
USER_NAME=${POSTGRES_USER:-postgres}
DB=${POSTGRES_DB:-$USER_NAME}
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
as_postgres() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > /tmp/pwfile
  chown postgres /tmp/pwfile
  as_postgres "$BIN/initdb" -D "$PGDATA" -U "$USER_NAME" --pwfile=/tmp/pwfile \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  as_postgres "$BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/run/postgresql" start >/dev/null
  psql() { as_postgres /usr/bin/psql -v ON_ERROR_STOP=1 -h /run/postgresql -U "$USER_NAME" "$@"; }
  [ "$DB" = postgres ] || psql -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
  for script in /docker-entrypoint-initdb.d/*.sql; do
    [ -e "$script" ] && psql -d "$DB" -f "$script" >/dev/null
  done
  as_postgres "$BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
  echo "database initialised"
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' \
  -c unix_socket_directories=/run/postgresql
