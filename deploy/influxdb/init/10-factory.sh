#!/bin/sh
# InfluxDB 2.x first-start initialisation for the platform (docker-compose.yml mounts this directory
# at /docker-entrypoint-initdb.d; the influxdb image runs it once, right after its own setup made the
# org, the bucket and the operator token from DOCKER_INFLUXDB_INIT_*, with the influx CLI signed in).
#
# The platform and Grafana speak the v1-compatible API (InfluxQL on /query, line protocol on /write),
# so this script makes:
#   - the DBRP mapping: database "$FACTORY_INFLUX_DATABASE", retention policy "autogen" -> the bucket;
#   - one v1 authorization per client, least privilege, each password from the environment:
#       ingest  write          (INFLUX_INGEST_PASSWORD)
#       kpi     read + write   (INFLUX_KPI_PASSWORD: it reads raw points and writes rollups)
#       api     read           (INFLUX_API_PASSWORD)
#       grafana read           (INFLUX_GRAFANA_PASSWORD)
# Clients sign in with HTTP basic auth (user name and password), which InfluxDB 2.x's v1 API takes.
# It runs only on an empty volume; docs/operations.md says how to change a password later.
# tests/test_deploy_influxdb_init.py runs it against a recording stand-in for the influx CLI.
set -eu

bucket_id=${DOCKER_INFLUXDB_INIT_BUCKET_ID:?the influxdb image sets DOCKER_INFLUXDB_INIT_BUCKET_ID after setup}
org=${DOCKER_INFLUXDB_INIT_ORG:?set DOCKER_INFLUXDB_INIT_ORG}
database=${FACTORY_INFLUX_DATABASE:-${DOCKER_INFLUXDB_INIT_BUCKET:?set DOCKER_INFLUXDB_INIT_BUCKET}}

influx v1 dbrp create --org "$org" --bucket-id "$bucket_id" --db "$database" --rp autogen --default

authorize() {  # authorize USER PASSWORD_VARIABLE PERMISSION...
    user=$1
    variable=$2
    shift 2
    eval "password=\${$variable:-}"
    if [ ${#password} -lt 16 ]; then
        echo "influxdb init: $variable is unset or shorter than 16 characters: run 'factory deploy init'" >&2
        exit 1
    fi
    permissions=""
    for permission in "$@"; do
        permissions="$permissions --$permission-bucket $bucket_id"
    done
    # shellcheck disable=SC2086  # the permissions are separate flags
    influx v1 auth create --org "$org" --username "$user" --password "$password" $permissions \
        --description "factory platform: $user ($*)" >/dev/null
    echo "influxdb init: v1 authorization '$user' ($*) on database '$database'"
}

authorize ingest INFLUX_INGEST_PASSWORD write
authorize kpi INFLUX_KPI_PASSWORD read write
authorize api INFLUX_API_PASSWORD read
authorize grafana INFLUX_GRAFANA_PASSWORD read
