#!/bin/sh
# The broker's entrypoint in docker-compose.yml: install the password and ACL files that
# `factory deploy init` wrote, refuse to start when the broker's own user cannot write its
# persistence directory, then run Mosquitto.
#
#   start.sh CONFIG [SECRETS_DIR [AUTH_DIR]]
#
# Why refuse: Mosquitto saves its in-memory database (persistent sessions and the QoS 1 messages
# queued for ingest) only at autosave and shutdown, and when it cannot it says so on its console
# and carries on. Measured: a broker that could not save lost every message queued for ingest
# across a restart (568 part-counter readings in 30 s). So the check writes, as that user, a file
# the way Mosquitto writes its database (create, then rename over) before the broker starts.
# tests/test_deploy_mosquitto.py runs this script with a real Mosquitto.
set -eu

config=${1:?usage: start.sh CONFIG [SECRETS_DIR [AUTH_DIR]]}
secrets=${2:-/mosquitto/secrets}
auth=${3:-/mosquitto/auth}

fail() {
    echo "mosquitto start: $*" >&2
    exit 1
}

setting() {  # the value of a setting in the config file (the last one wins, as in Mosquitto)
    sed -n "s/^[[:space:]]*$1[[:space:]]\{1,\}//p" "$config" | tail -n 1 | sed 's/[[:space:]]*$//'
}

as_broker_user() {  # run a shell command as the user Mosquitto runs as
    if [ "$(id -u)" -eq 0 ]; then
        su -s /bin/sh "$broker_user" -c "$1"
    else
        sh -c "$1"  # not root: Mosquitto keeps the user it was started as
    fi
}

[ -r "$config" ] || fail "cannot read the config file $config"
broker_user=$(setting user)
broker_user=${broker_user:-mosquitto}  # whom Mosquitto runs as when started as root

# 1. The password and ACL files, readable by the broker's user only (Mosquitto 2 warns otherwise).
for name in passwd acl; do
    [ -s "$secrets/$name" ] || fail "$secrets/$name is missing or empty: run 'factory deploy init' beside docker-compose.yml"
done
mkdir -p "$auth"
for name in passwd acl; do
    cp "$secrets/$name" "$auth/$name"
    chmod 0600 "$auth/$name"
    if [ "$(id -u)" -eq 0 ]; then chown "$broker_user" "$auth/$name"; fi
done

# 2. The persistence directory: the broker's user must create and replace files in it.
if [ "$(setting persistence)" = "true" ]; then
    dir=$(setting persistence_location)
    [ -n "$dir" ] || fail "persistence is on but persistence_location is not set in $config"
    dir=${dir%/}
    file=$(setting persistence_file)
    file=${file:-mosquitto.db}
    probe="$dir/.start-check.$$"
    if ! as_broker_user "touch '$probe.new' && mv -f '$probe.new' '$probe' && rm -f '$probe'" 2>/dev/null; then
        rm -f "$probe.new" "$probe" 2>/dev/null || true
        fail "user '$broker_user' cannot write the persistence directory $dir ($(ls -ld "$dir" 2>&1)):" \
            "Mosquitto could not save its database and would lose every queued message on restart." \
            "Give it to that user (docker volume: chown -R 1883:1883; host: chown $broker_user $dir)."
    fi
    if [ -e "$dir/$file" ] && ! as_broker_user "test -r '$dir/$file' && test -w '$dir/$file'"; then
        fail "user '$broker_user' cannot read and write $dir/$file ($(ls -l "$dir/$file" 2>&1))"
    fi
fi

exec mosquitto -c "$config"
