#!/bin/sh
# Run once by the postgres image on an empty data directory (docker/compose.yaml): the role
# kqe-api and kqe-aggregator log in as, with the password from docker/kqe.env. The
# migrations (kqe migrate, as the owner) give it its rights; they create it only where it
# does not exist yet.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v pw="$KQE_SERVICE_PASSWORD" <<'SQL'
CREATE ROLE kqe_service LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SQL
