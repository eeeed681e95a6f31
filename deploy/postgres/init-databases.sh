#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume
# (/docker-entrypoint-initdb.d, compose.scale.yaml): one database and one
# owner role each for Keycloak and for the Resource Server's messages. The
# passwords come from the container's environment.
set -euo pipefail

: "${UMAWIDE_KEYCLOAK_DB_PASSWORD:?set UMAWIDE_KEYCLOAK_DB_PASSWORD}"
: "${UMAWIDE_INCOMING_DB_PASSWORD:?set UMAWIDE_INCOMING_DB_PASSWORD}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  --set=keycloak_password="$UMAWIDE_KEYCLOAK_DB_PASSWORD" \
  --set=incoming_password="$UMAWIDE_INCOMING_DB_PASSWORD" <<'SQL'
CREATE ROLE keycloak LOGIN PASSWORD :'keycloak_password';
CREATE DATABASE keycloak OWNER keycloak;
CREATE ROLE incoming LOGIN PASSWORD :'incoming_password';
CREATE DATABASE incoming OWNER incoming;
SQL
