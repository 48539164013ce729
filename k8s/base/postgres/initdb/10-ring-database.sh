#!/bin/sh
# Creates the ring's database (RING_DATABASE_URL) on the PostgreSQL of shard 0
# only: the instance whose host name ends in -0 (postgres-0 in
# docker-compose.yml, postgres-shard-0 in Kubernetes). The postgres image runs
# this once, when it initialises an empty data directory, as POSTGRES_USER,
# after POSTGRES_DB (the shard's event store) was created.
case "${HOSTNAME:-}" in
  *-0)
    echo "creating the ring database shardwrite_ring"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
      --command 'CREATE DATABASE shardwrite_ring'
    ;;
esac
