#!/usr/bin/env bash
# Creates the Temporal databases (main and visibility) on PostgreSQL and brings their schemas to the version
# this admin-tools image carries; run by the compose service temporal-schema before the server starts.
# Idempotent: setup-schema runs only on a database without Temporal's schema_version table, and update-schema
# applies only the versions a database lacks, so it is safe on every `up` and after an image upgrade.
set -euo pipefail
: "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}" "${POSTGRES_HOST:=postgresql}"
export SQL_USER="$POSTGRES_USER" SQL_PASSWORD="$POSTGRES_PWD" PGPASSWORD="$POSTGRES_PWD"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_HOST" -p 5432 "$@"; }

for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}" dir="${pair##*:}"
  if psql -h "$POSTGRES_HOST" -U "$POSTGRES_USER" -d "$db" -tAc 'select 1 from schema_version limit 1' >/dev/null 2>&1; then
    echo "temporal-schema: $db has a schema, upgrading if needed"
  else
    echo "temporal-schema: creating $db"
    # `create` fails on an existing but empty database; that case is fine, setup-schema below fills it.
    sql_tool --db "$db" create || true
    sql_tool --db "$db" setup-schema -v 0.0
  fi
  sql_tool --db "$db" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
echo 'temporal-schema: done'
