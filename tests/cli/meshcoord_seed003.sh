#!/bin/bash
# A seed-003-style client (its three endpoints, with curl) against a real meshcoord: POST
# /register gets an address from the network's CIDR (the same one again for the same key),
# POST /heartbeat is accepted, GET /peers?peer_id= lists the others in seed 003's shape; the
# endpoints refuse a network that requires admission. Args: $1 build dir, $2 source dir.
set -euo pipefail
build=$1
meshcoord=$build/tools/meshcoord
command -v curl >/dev/null || { echo "FAIL: curl missing (scripts/install-deps.sh installs it)"; exit 1; }
dir=$(mktemp -d /tmp/meshcoord-seed003-XXXXXX)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f $dir/log ]] && sed 's/^/  meshcoord: /' "$dir/log"; exit 1; }

export MESHCOORD_ADMIN_TOKEN="seed003-admin-token-$$-$RANDOM"
"$meshcoord" --listen 127.0.0.1:0 --db "sqlite:$dir/db" --legacy-network legacy --ready-file "$dir/ready" \
    --log-level warn >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -s $dir/ready ]] && break; sleep 0.1; done
[[ -s $dir/ready ]] || fail "meshcoord did not start"
url=http://127.0.0.1:$(cut -d' ' -f1 "$dir/ready")
admin=(-H "Authorization: Bearer $MESHCOORD_ADMIN_TOKEN")
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# Before the network exists, and for a network that needs an invite.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/register" -d '{"public_key":"'"$(head -c 32 /dev/urandom | base64)"'"}')
[[ $code == 404 ]] || fail "register before the network exists: HTTP $code"
curl -sf "${admin[@]}" -X POST "$url/api/v1/mesh/networks" \
    -d '{"id":"legacy","name":"legacy","cidr":"10.100.0.0/16","options":{"require_admission":false}}' >/dev/null ||
    fail "network create"

key_a=$(head -c 32 /dev/urandom | base64)
key_b=$(head -c 32 /dev/urandom | base64)
reg() { curl -sf -X POST "$url/register" -d '{"public_key":"'"$1"'","hostname":"'"$2"'","os":"linux","endpoint":"'"$3"'","request_ip":true,"exit_node":false}'; }
ra=$(reg "$key_a" laptop 192.0.2.1:51820) || fail "register a"
rb=$(reg "$key_b" server-1 192.0.2.2:51820) || fail "register b"
[[ $(field "d['success']" <<<"$ra") == True ]] || fail "register a: $ra"
ip_a=$(field "d['assigned_ip']" <<<"$ra")
id_a=$(field "d['peer_id']" <<<"$ra")
[[ $ip_a == 10.100.* ]] || fail "a's address $ip_a is not in 10.100.0.0/16"
[[ $(field "d['network_cidr']" <<<"$ra") == 10.100.0.0/16 ]] || fail "network_cidr: $ra"
[[ -n $(field "d['server_public_key']" <<<"$ra") ]] || fail "server_public_key: $ra"
[[ $(field "d['assigned_ip']" <<<"$(reg "$key_a" laptop 192.0.2.1:51820)") == "$ip_a" ]] || fail "a's address changed"

hb=$(curl -sf -X POST "$url/heartbeat" -d '{"peer_id":"'"$id_a"'","endpoint":"192.0.2.9:51820"}') || fail "heartbeat"
[[ $(field "d['success']" <<<"$hb") == True ]] || fail "heartbeat: $hb"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/heartbeat" -d '{"peer_id":"peer-000000000000"}')
[[ $code == 404 ]] || fail "heartbeat of an unknown peer: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/heartbeat" -d '{"peer_id":7}')
[[ $code == 400 ]] || fail "heartbeat with a wrong type: HTTP $code"

peers=$(curl -sf "$url/peers?peer_id=$id_a") || fail "peers"
[[ $(field "len(d['peers'])" <<<"$peers") == 1 ]] || fail "a should see one peer: $peers"
for f in id public_key virtual_ip endpoint hostname os allowed_ips exit_node online last_heartbeat; do
    [[ $(field "'$f' in d['peers'][0]" <<<"$peers") == True ]] || fail "peer field $f missing: $peers"
done
[[ $(field "d['peers'][0]['public_key']" <<<"$peers") == "$key_b" ]] || fail "a sees not b: $peers"
[[ $(field "d['peers'][0]['hostname']" <<<"$peers") == server-1 ]] || fail "hostname: $peers"
[[ $(field "d['peers'][0]['online']" <<<"$peers") == True ]] || fail "online: $peers"
[[ $(field "len(d['peers'])" <<<"$(curl -sf "$url/peers?peer_id=other")") == 2 ]] || fail "a stranger should see both"
# The peer list seen by meshcoord's own API agrees, with a's new endpoint from its heartbeat.
all=$(curl -sf "${admin[@]}" "$url/api/v1/mesh/networks/legacy/peers") || fail "admin list"
[[ $(field "[p['endpoint'] for p in d['peers'] if p['id'] == '$id_a'][0]" <<<"$all") == 192.0.2.9:51820 ]] ||
    fail "a's endpoint after its heartbeat: $all"
echo "PASS: meshcoord_seed003"
