#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test run, from Debian's programs (never the packaged service):
#   pg_cluster.sh start DIR   initdb in DIR (as `postgres` when run as root: initdb refuses root), start it on
#                             a free loopback port with its socket in DIR, and print its URL
#   pg_cluster.sh stop DIR    stop it (immediately: the cluster is thrown away with DIR)
# fsync is off: the tests crash the cockpit, never PostgreSQL, so PostgreSQL's own durability is not what
# they measure, and a test run should not wait for the disk.
set -euo pipefail
action="$1" dir="$2"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi
case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
esac
