#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests (unit fixture tests/unit/pg_fixture.cc, netns tests,
# benchmarks): initdb into DIR, listen on a unix socket in DIR only (no TCP, so parallel servers
# never collide), trust auth for the user `meshcoord`, one database.
#   url=$(scripts/pg-temp.sh start DIR [DBNAME])   # prints the libpq URL of DBNAME (default meshcoord)
#   scripts/pg-temp.sh stop DIR                    # stops the server, removes DIR
# As root, the server runs as the `postgres` user (or `nobody` if there is none): PostgreSQL
# refuses to run as root. A missing PostgreSQL is an error (exit 1), never a skip: the tests
# that need it must fail where it is not installed (scripts/install-deps.sh installs it).
set -euo pipefail

usage() { echo "usage: $0 start DIR [DBNAME] | stop DIR" >&2; exit 2; }
(($# >= 2)) || usage
cmd=$1 dir=$2 db=${3:-meshcoord}
port=5432 # names the socket file inside DIR; nothing listens on TCP

bindir=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
  [[ -x $d/initdb && -x $d/pg_ctl ]] && bindir=$d
done
if [[ -z $bindir ]]; then
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    bindir=$(dirname "$(command -v initdb)")
  else
    echo "pg-temp: no PostgreSQL server binaries (initdb, pg_ctl); install 'postgresql'" >&2
    exit 1
  fi
fi

run=()
if [[ $(id -u) -eq 0 ]]; then
  user=postgres
  id -u "$user" >/dev/null 2>&1 || user=nobody
  run=(runuser -u "$user" --)
fi

case $cmd in
  start)
    [[ $dir == /* && $dir != *[[:space:]]* ]] || { echo "pg-temp: DIR must be an absolute path without spaces" >&2; exit 2; }
    mkdir -p "$dir"
    [[ -n ${user:-} ]] && chown "$user" "$dir"
    if ! "${run[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U meshcoord -E UTF8 --no-sync \
         >"$dir/initdb.log" 2>&1; then
      echo "pg-temp: initdb failed:" >&2; tail -20 "$dir/initdb.log" >&2; exit 1
    fi
    if ! "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
         -o "-k $dir -p $port -c listen_addresses=''" start >/dev/null 2>&1; then
      echo "pg-temp: the server did not start:" >&2; tail -20 "$dir/server.log" >&2; exit 1
    fi
    if [[ $db != postgres ]]; then
      "${run[@]}" "$bindir/createdb" -h "$dir" -p "$port" -U meshcoord "$db" >&2
    fi
    echo "postgresql://meshcoord@/$db?host=$dir&port=$port"
    ;;
  stop)
    if [[ -f $dir/data/postmaster.pid ]]; then
      "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
