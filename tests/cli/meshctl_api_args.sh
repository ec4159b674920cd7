#!/bin/bash
# meshctl status / peers: exit 1 with a clear message when meshfwd's API is not there or answers
# garbage, exit 2 for a bad --api or -c, and the wg-style and --json output against a stand-in
# API (python3's http.server serving fixture files). No root: only 127.0.0.1 is used.
# Args: $1 build dir, $2 source dir.
set -euo pipefail

build=$1
src=$2
meshctl=$build/tools/meshctl
tmp=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
umask 077

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect RC PATTERN ARGS...: runs `meshctl ARGS`, checks the exit status and that stderr has PATTERN.
expect() {
    local want=$1 pattern=$2
    shift 2
    set +e
    timeout 20 "$meshctl" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    set -e
    [[ $rc -eq $want ]] || fail "meshctl $*: exit $rc, want $want; stderr: $(cat "$tmp/err")"
    grep -qF -- "$pattern" "$tmp/err" || fail "meshctl $*: stderr lacks '$pattern': $(cat "$tmp/err")"
}

# A loopback port nobody listens on (bound then released; a race with another process is harmless
# here: it would have to listen on exactly this port in the next moment).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
for cmd in status peers; do
    expect 1 "meshctl: cannot reach meshfwd's API at 127.0.0.1:$port (is meshfwd running? is api.listen different?)" \
        $cmd --api "127.0.0.1:$port"
done

expect 2 "--api localhost:7082" status --api localhost:7082
expect 2 "--api 127.0.0.1" peers --api 127.0.0.1
expect 2 "--api 127.0.0.1:0" status --api 127.0.0.1:0
expect 2 "excludes" status --api 127.0.0.1:7082 -c "$tmp/mesh.yaml"
expect 2 "cannot take api.listen from $tmp/nope.yaml" status -c "$tmp/nope.yaml"
expect 2 "" status --bogus
# A mistyped subcommand is named, with the list of known ones (not CLI11's "A subcommand is required").
expect 2 "meshctl: error: unknown subcommand 'bogus'; known subcommands: genkey, pubkey, genpsk, ping, status, peers" bogus
expect 2 "unknown subcommand 'stauts'" stauts --api 127.0.0.1:7082

# -c: api.listen comes from the config.
"$meshctl" genkey >"$tmp/a.key"
cat >"$tmp/mesh.yaml" <<EOF
node:
  private_key_file: $tmp/a.key
  address: 10.100.0.1/16
api:
  listen: 127.0.0.1:$port
EOF
expect 1 "cannot reach meshfwd's API at 127.0.0.1:$port" status -c "$tmp/mesh.yaml"

# A stand-in API: fixture files under v1/ served by python3's http.server.
mkdir -p "$tmp/www/v1"
cp "$src/tests/fuzz/corpus/api_json/status.json" "$tmp/www/v1/status"
cp "$src/tests/fuzz/corpus/api_json/peers.json" "$tmp/www/v1/peers"
python3 - "$tmp/www" "$tmp/port" <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.func.log_message = lambda *a: None
srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
PY
server_pid=$!
for _ in $(seq 100); do [[ -s $tmp/port ]] && break; sleep 0.1; done
[[ -s $tmp/port ]] || fail "stand-in API did not start"
api=127.0.0.1:$(cat "$tmp/port")

"$meshctl" peers --api "$api" >"$tmp/peers.txt" || fail "meshctl peers against the stand-in API"
grep -qx "peer: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" "$tmp/peers.txt" || fail "peers: $(cat "$tmp/peers.txt")"
grep -qx "  transfer: 1.20 MiB received, 3.40 MiB sent" "$tmp/peers.txt" || fail "peers: $(cat "$tmp/peers.txt")"
grep -qx "  latest handshake: never" "$tmp/peers.txt" || fail "peers: $(cat "$tmp/peers.txt")"
"$meshctl" status --api "$api" >"$tmp/status.txt" || fail "meshctl status against the stand-in API"
grep -qx "drops: no_route 3, replay 1" "$tmp/status.txt" || fail "status: $(cat "$tmp/status.txt")"
"$meshctl" status --api "$api" --json >"$tmp/status.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["node"]["name"] == "a"' "$tmp/status.json" ||
    fail "--json output is not the API's JSON"
grep -q '^  "node": {' "$tmp/status.json" || fail "--json output is not pretty-printed"

# Garbage and wrong shapes: exit 1 with a message, no crash.
printf '{"peers": [' >"$tmp/www/v1/peers"
expect 1 "sent malformed JSON for /v1/peers" peers --api "$api"
printf '{"peers": [{"public_key": 5}]}' >"$tmp/www/v1/peers"
expect 1 "peers[0].public_key: not a string" peers --api "$api"
rm "$tmp/www/v1/status"
expect 1 "answered 404 to /v1/status" status --api "$api"

"$meshctl" status --help | grep -q -- "--api" || fail "status --help does not mention --api"
echo "PASS: meshctl status/peers argument and error checks"
