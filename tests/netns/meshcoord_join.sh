#!/bin/bash
# Three meshfwd nodes join one network, node1 and node2 by invite code, node3 with an HS256 node
# token (JWT) whose network_config.mtu (1300) becomes its device's MTU and whose
# network_config.subnet (10.100.42.0/28) holds its address; they reach each other;
# meshcoord killed
# with SIGKILL does not stop their traffic, and a node restarted while it is down comes back
# with its cached addresses and peers.
#
#   ns0 ($ns0): meshcoord on 192.0.2.1:7080 (sqlite), bridge br0 192.0.2.1/24
#       |  veth1 / veth2 / veth3
#   ns1: node1 192.0.2.11    ns2: node2 192.0.2.12    ns3: node3 192.0.2.13
#   (mesh0 on each, addresses and peers from meshcoord only)
#
# meshcoord --listen ADDR:PORT --db sqlite:FILE with the admin token in MESHCOORD_ADMIN_TOKEN;
# meshctl networks create / invite (admin, --coord URL) and meshctl join CODE -o FILE.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
meshfwd_build "$1"
netns_python
meshcoord=$build/tools/meshcoord
[[ -x $meshcoord ]] || fail "$meshcoord not built"
api=127.0.0.1:7082
ns0="mcs$$"
ns3="mfc$$"
coord_url=http://192.0.2.1:7080
export MESHCOORD_ADMIN_TOKEN="test-admin-$$-$RANDOM"

# --- topology --------------------------------------------------------------------------------

netns_add "$ns0"
ip -n "$ns0" link add br0 type bridge
ip -n "$ns0" addr add 192.0.2.1/24 dev br0
ip -n "$ns0" link set br0 up
i=1
for ns in "$ns1" "$ns2" "$ns3"; do
    netns_add "$ns"
    ip link add "vm$i-$$" netns "$ns0" type veth peer name "veth$i" netns "$ns"
    ip -n "$ns0" link set "vm$i-$$" master br0 up
    ip -n "$ns" addr add "192.0.2.1$i/24" dev "veth$i"
    ip -n "$ns" link set "veth$i" up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    i=$((i + 1))
done

# --- meshcoord and the network -----------------------------------------------------------------

coord_up() { ip netns exec "$ns1" "$py" -c "import socket; socket.create_connection(('192.0.2.1', 7080), 1)"; }
start_coord() {
    netns_spawn "$ns0" "meshcoord-$1" "$meshcoord" --listen 192.0.2.1:7080 --db "sqlite:$tmp/coord.db"
    coord_pid=$spawned_pid
    wait_until 10 coord_up || { cat "$tmp/meshcoord-$1.log" >&2; fail "meshcoord did not listen within 10 s"; }
}
log "meshcoord and a network"
start_coord 1
head -c 32 /dev/urandom | base64 >"$tmp/jwt.secret"
net_json=$(ip netns exec "$ns1" "$meshctl" networks create joinnet --id joinnet --cidr 10.100.0.0/16 \
    --jwt-hs256-secret-file "$tmp/jwt.secret" --coord "$coord_url" --json) || fail "networks create: $net_json"
net_id=$(jget "$net_json" "d['id']")

log "three nodes join by invite code"
for n in 1 2 3; do
    code=$(ip netns exec "$ns1" "$meshctl" invite "$net_id" --hours 1 --coord "$coord_url") || fail "invite: $code"
    mkdir -p "$tmp/node$n"
    "$meshctl" join "$code" -o "$tmp/node$n/mesh.yaml" --name "node$n" --device mesh0 >/dev/null || fail "join node$n"
    "$meshctl" join "$code" -o "$tmp/node$n/mesh.yaml" --name "node$n" 2>/dev/null && fail "join overwrote node$n's mesh.yaml"
    [[ $(stat -c %a "$tmp/node$n/node$n.key") == 600 ]] || fail "node$n key mode"
    [[ $(stat -c %a "$tmp/node$n/mesh.yaml") =~ ^6[04]0$ ]] || fail "node$n mesh.yaml mode"
done
# node3 admitted by a node token instead (its invite stays unused): HS256 over the secret above.
token=$("$py" - "$tmp/jwt.secret" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret = open(sys.argv[1]).read().strip().encode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"exp": int(time.time()) + 3600, "network": "joinnet",
                       "network_config": {"mtu": 1300, "subnet": "10.100.42.0/28"}}).encode())
sig = b64(hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest())
print(head + "." + body + "." + sig)
PY
)
sed -i "s|^    invite: .*|    token: \"$token\"|" "$tmp/node3/mesh.yaml"
grep -q "^    token: " "$tmp/node3/mesh.yaml" || fail "node3's mesh.yaml has no token line: $(cat "$tmp/node3/mesh.yaml")"
nsof() { case $1 in 1) echo "$ns1" ;; 2) echo "$ns2" ;; 3) echo "$ns3" ;; esac; }
declare -A pid
for n in 1 2 3; do
    netns_meshfwd "$(nsof "$n")" "node$n" "$tmp/node$n/mesh.yaml" 0 "$api"
    pid[$n]=$spawned_pid
done

coord_field() { jget "$(status_json "$(nsof "$1")")" "d['coordination']$2"; }
settled() { [[ $(coord_field "$1" "['registered']") == True && $(coord_field "$1" "['peers_online']") == 2 ]]; }
for n in 1 2 3; do
    wait_until 20 settled "$n" || fail "node$n not registered with 2 online peers: $(coord_field "$n" "")"
done
v4() { coord_field "$1" "['addresses'][0].split('/')[0]"; }
v6() { coord_field "$1" "['addresses'][1].split('/')[0]"; }
for n in 1 2 3; do
    echo "    node$n: $(v4 "$n"), $(v6 "$n")"
done
mtu_of() { ip -n "$(nsof "$1")" -j link show mesh0 | "$py" -c 'import json, sys; print(json.load(sys.stdin)[0]["mtu"])'; }
token_mtu() { [[ $(mtu_of 3) == 1300 ]]; }
wait_until 5 token_mtu || fail "node3's mesh0 MTU $(mtu_of 3), want the token's 1300"
[[ $(mtu_of 1) != 1300 ]] || fail "node1 (invite, no token) got MTU 1300 too"
echo "    node3's MTU from its token: $(mtu_of 3); node1: $(mtu_of 1)"
[[ $(v4 3) == 10.100.42.1 ]] || fail "node3's address $(v4 3), want the first host of its token's subnet 10.100.42.0/28"
[[ $(v4 1) == 10.100.0.* ]] || fail "node1's address $(v4 1) should come from the network's start"

sources=$(jget "$(peers_json "$ns1")" "' '.join(sorted(p['source'] for p in d['peers']))")
[[ $sources == "meshcoord meshcoord" ]] || fail "node1's peers' sources: '$sources', want both from meshcoord"
from_lines=$(ip netns exec "$ns1" "$meshctl" peers --api "$api" | grep -c "^  from: meshcoord$" || true)
[[ $from_lines == 2 ]] || fail "meshctl peers marks $from_lines peers as from meshcoord, want 2"

log "each reaches the others by IPv4 and key-derived IPv6"
for a in 1 2 3; do
    for b in 1 2 3; do
        [[ $a == "$b" ]] && continue
        tunnel_ping "$(nsof "$a")" "$(v4 "$b")"
        tunnel_ping "$(nsof "$a")" "$(v6 "$b")"
    done
done
addr1=$(v4 1)
addr1_6=$(v6 1)
addr2=$(v4 2)
addr3=$(v4 3)

log "meshcoord killed with SIGKILL: traffic goes on"
kill -KILL "$coord_pid"
wait "$coord_pid" 2>/dev/null || true
tunnel_ping "$ns1" "$addr2"
tunnel_ping "$ns2" "$addr1"

log "node1 restarted while meshcoord is down: cached addresses and peers"
kill -TERM "${pid[1]}"
wait_until 10 not_running "${pid[1]}" || fail "node1 did not stop"
netns_meshfwd "$ns1" node1-again "$tmp/node1/mesh.yaml" 0 "$api"
[[ $(coord_field 1 "['from_cache']") == True ]] || fail "node1 not from the cache: $(coord_field 1 "")"
[[ $(v4 1) == "$addr1" && $(v6 1) == "$addr1_6" ]] || fail "node1's addresses changed: $(v4 1) $(v6 1)"
tunnel_ping "$ns1" "$addr2"
# node1 starts its sessions afresh; node3 still holds the old one until WireGuard's timers renew
# it (up to 15 s), so node1 speaks first, as a restarted wg peer must.
tunnel_ping "$ns1" "$addr3"
tunnel_ping "$ns3" "$addr1"

log "meshcoord back: node1 reconnects and keeps its address"
start_coord 2
connected() { [[ $(coord_field 1 "['connected']") == True ]]; }
wait_until 40 connected || fail "node1 did not reconnect within 40 s: $(coord_field 1 "")"
[[ $(v4 1) == "$addr1" ]] || fail "node1's address after re-registration: $(v4 1), was $addr1"

echo "PASS: meshcoord_join"
