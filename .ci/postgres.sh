#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the team-store tests: Debian's server (installed when missing),
# a cluster made by initdb in a folder of the caller's, listening on loopback only.
#
#   bash .ci/postgres.sh start DIR [durable]   # prints the URL, e.g. postgres://postgres@127.0.0.1:41234/postgres
#   bash .ci/postgres.sh stop DIR
#
# PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres` user that
# Debian's package creates. Durability is switched off (fsync, synchronous_commit): the cluster is
# deleted after the tests, and its speed is not what the tests measure. `durable` keeps PostgreSQL's
# defaults, for benchmarks.
set -euo pipefail
action="${1:?start or stop}"
dir="${2:?a folder for the cluster}"

bindir() {
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
        echo "installing Debian's postgresql" >&2
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        else
            sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        fi
        found="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    echo "$found"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

bin="$(bindir)"
case "$action" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    settings="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200"
    if [ "${3:-}" != durable ]; then
        settings="$settings -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$settings" start >&2 ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
