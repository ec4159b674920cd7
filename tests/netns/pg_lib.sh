# A temporary PostgreSQL server for netns tests (meshcoord on PostgreSQL). Source it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/pg_lib.sh"
#   pg_temp_start                 # sets $pg_url (libpq URL of database "meshcoord"), $pg_dir
#   meshcoord --db "$pg_url" ...
#
# The server listens on a unix socket in $pg_dir only (no TCP; reachable from the host
# namespace, where meshcoord runs). It is stopped and $pg_dir removed by lib.sh's cleanup (a
# cleanup hook), also when the test fails. A missing PostgreSQL fails the test (never skips).

pg_dir=
pg_url=

_pg_temp_stop() {
    if [[ -n $pg_dir ]]; then
        "$(dirname "${BASH_SOURCE[0]}")/../../scripts/pg-temp.sh" stop "$pg_dir" || true
    fi
}

pg_temp_start() {
    pg_dir="/tmp/meshfwd-pg.$$.$RANDOM"
    cleanup_hooks+=(_pg_temp_stop)
    pg_url=$("$(dirname "${BASH_SOURCE[0]}")/../../scripts/pg-temp.sh" start "$pg_dir" meshcoord)
}
