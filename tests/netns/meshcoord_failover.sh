#!/bin/bash
# Two meshcoord replicas on one PostgreSQL database; three meshfwd nodes list both (replica A
# first) and follow A. A is killed with SIGKILL; checked:
#   1. each node's session moves to replica B within 20 s (`meshctl status --json`:
#      coordination.server is B's URL and coordination.connected is true);
#   2. traffic between the nodes goes on (a ping running across the kill, then pings after it);
#   3. the nodes' heartbeats reach B: B's admin peer list (GET .../peers) shows each node online
#      with a last_heartbeat later than the moment all had moved, twice over (meshcoord here
#      marks a node offline after 10 s without one, so "online" alone would not last without them);
#   4. a change made after the failover reaches the nodes through B: a fourth node joins by an
#      invite from B, the three learn it from B's event stream and reach it through the tunnel.
#
#   ns0 ($ns0): meshcoord A on 192.0.2.1:7080, B on 192.0.2.2:7080 (same PostgreSQL database,
#               unix socket in /tmp), bridge br0 192.0.2.1/24 + 192.0.2.2/24
#       |  veth1 / veth2 / veth3 / veth4
#   ns1: node1 192.0.2.11   ns2: node2 192.0.2.12   ns3: node3 192.0.2.13   ns4: node4 192.0.2.14
#   (mesh0 on each; mesh.discovery.server: [A, B], written by `meshctl join` from the invite,
#    which carries meshcoord's public_urls)
#
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"

netns_require_root
netns_require_programs python3 ping
meshfwd_build "$1"
netns_python
meshcoord=$build/tools/meshcoord
[[ -x $meshcoord ]] || fail "$meshcoord not built"
api=127.0.0.1:7082
ns0="mco$$"
ns3="mfc$$"
ns4="mfd$$"
url_a=http://192.0.2.1:7080
url_b=http://192.0.2.2:7080
export MESHCOORD_ADMIN_TOKEN="test-admin-$$-$RANDOM"
nsof() { case $1 in 1) echo "$ns1" ;; 2) echo "$ns2" ;; 3) echo "$ns3" ;; 4) echo "$ns4" ;; esac; }

# --- topology --------------------------------------------------------------------------------

netns_add "$ns0"
ip -n "$ns0" link add br0 type bridge
ip -n "$ns0" addr add 192.0.2.1/24 dev br0
ip -n "$ns0" addr add 192.0.2.2/24 dev br0
ip -n "$ns0" link set br0 up
for i in 1 2 3 4; do
    ns=$(nsof "$i")
    netns_add "$ns"
    ip link add "vm$i-$$" netns "$ns0" type veth peer name "veth$i" netns "$ns"
    ip -n "$ns0" link set "vm$i-$$" master br0 up
    ip -n "$ns" addr add "192.0.2.1$i/24" dev "veth$i"
    ip -n "$ns" link set "veth$i" up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done

# --- PostgreSQL, the two replicas and the network ----------------------------------------------

log "PostgreSQL and meshcoord replicas A ($url_a) and B ($url_b)"
pg_temp_start
# offline_after 10 s (swept every second) so that B's "online" depends on heartbeats arriving;
# both replicas put both URLs in their invites, A first.
cat >"$tmp/meshcoord.yaml" <<EOF
offline_after: 10s
sweep_interval: 1s
public_urls: ["$url_a", "$url_b"]
EOF
coord_up() { ip netns exec "$ns1" "$py" -c "import socket; socket.create_connection(('$1', 7080), 1)"; }
declare -A coord_pid
for r in a b; do
    host=192.0.2.1
    [[ $r == b ]] && host=192.0.2.2
    netns_spawn "$ns0" "meshcoord-$r" "$meshcoord" -c "$tmp/meshcoord.yaml" --listen "$host:7080" --db "$pg_url"
    coord_pid[$r]=$spawned_pid
    wait_until 15 coord_up "$host" || { cat "$tmp/meshcoord-$r.log" >&2; fail "meshcoord $r did not listen within 15 s"; }
done
key_a=$(grep -o 'server key [^ ,]*' "$tmp/meshcoord-a.log" || true)
key_b=$(grep -o 'server key [^ ,]*' "$tmp/meshcoord-b.log" || true)
[[ -n $key_a && $key_a == "$key_b" ]] || fail "replicas do not share one server key: A '$key_a', B '$key_b'"

# Created through A with a 2 s heartbeat (meshctl networks create has no option for it).
admin() {
    local method=$1 url=$2 body=${3:-}
    ip netns exec "$ns1" "$py" - "$method" "$url" "$body" <<'PY'
import os, sys, urllib.request
method, url, body = sys.argv[1:]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Authorization": "Bearer " + os.environ["MESHCOORD_ADMIN_TOKEN"],
                                      "Content-Type": "application/json"})
# No proxy from the environment: meshcoord is inside this test's namespace.
with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
    print(r.read().decode())
PY
}
net_json=$(admin POST "$url_a/api/v1/mesh/networks" \
    '{"id": "failnet", "cidr": "10.100.0.0/16", "options": {"heartbeat_interval_s": 2, "offline_after_s": 10}}') ||
    fail "creating the network through A: $net_json"
net_id=$(jget "$net_json" "d['id']")

join_node() {
    local n=$1 url=$2 code
    code=$(ip netns exec "$ns1" "$meshctl" invite "$net_id" --hours 1 --coord "$url") || fail "invite from $url: $code"
    mkdir -p "$tmp/node$n"
    "$meshctl" join "$code" -o "$tmp/node$n/mesh.yaml" --name "node$n" --device mesh0 >/dev/null || fail "join node$n"
    # Both replicas, A first: the order a node tries them in.
    grep -A2 "^    server:$" "$tmp/node$n/mesh.yaml" | tr -d ' "' | tail -2 | paste -sd, - |
        grep -qxF -- "-$url_a,-$url_b" || fail "node$n's mesh.yaml does not list A then B: $(cat "$tmp/node$n/mesh.yaml")"
}

log "three nodes join by invites from A"
declare -A pid
for n in 1 2 3; do
    join_node "$n" "$url_a"
    netns_meshfwd "$(nsof "$n")" "node$n" "$tmp/node$n/mesh.yaml" 0 "$api"
    pid[$n]=$spawned_pid
done

coord_field() { jget "$(status_json "$(nsof "$1")")" "d['coordination']$2"; }
# on N URL PEERS: node N follows URL's event stream and has PEERS online peers.
on() {
    local st
    st=$(status_json "$(nsof "$1")") || return 1
    [[ $(jget "$st" "(d['coordination']['server'], d['coordination']['connected'], d['coordination']['registered'], d['coordination']['peers_online'])") == "('$2', True, True, $3)" ]]
}
for n in 1 2 3; do
    wait_until 30 on "$n" "$url_a" 2 || fail "node$n not following A with 2 online peers: $(coord_field "$n" "")"
done
v4() { coord_field "$1" "['addresses'][0].split('/')[0]"; }
declare -A addr
for n in 1 2 3; do
    addr[$n]=$(v4 "$n")
    echo "    node$n: ${addr[$n]}, meshcoord $(coord_field "$n" "['server']")"
done

log "the nodes reach each other"
tunnel_ping "$ns1" "${addr[2]}"
tunnel_ping "$ns1" "${addr[3]}"
tunnel_ping "$ns2" "${addr[3]}"

# --- A killed ----------------------------------------------------------------------------------

log "replica A killed with SIGKILL, a ping running across it"
# 60 pings, 0.2 s apart: about 3 s before the kill and 9 s after it.
netns_spawn "$ns1" ping-across ping -c 60 -i 0.2 -W 2 "${addr[2]}"
ping_pid=$spawned_pid
sleep 3
kill -KILL "${coord_pid[a]}"
wait "${coord_pid[a]}" 2>/dev/null || true
killed_at=$EPOCHREALTIME
kill_deadline=$((SECONDS + 20))

log "1. every node's session moves to B (while the ping runs)"
for n in 1 2 3; do
    wait_until $((kill_deadline - SECONDS)) on "$n" "$url_b" 2 ||
        fail "node$n not following B with 2 online peers within 20 s of the kill: $(coord_field "$n" "")"
done
echo "    all three on $url_b within $("$py" -c "print(f'{$EPOCHREALTIME - $killed_at:.1f}')") s of the kill"
grep -q "meshcoord $url_b: following the event stream" "$tmp/meshfwd-node1.log" ||
    fail "node1's log does not say it follows B"

log "2. traffic goes on"
wait_pids $((SECONDS + 30)) "$ping_pid"
not_running "$ping_pid" || fail "the ping across the kill did not end within 30 s"
received=$(grep -o '[0-9]* received' "$tmp/ping-across.log" | cut -d' ' -f1 || true)
# A lost ping or two under load is no failure of meshcoord's; a tunnel that stopped loses ~45.
((${received:-0} >= 54)) || fail "ping across the kill: $(grep 'packets transmitted' "$tmp/ping-across.log")"
echo "    $(grep 'packets transmitted' "$tmp/ping-across.log")"
tunnel_ping "$ns2" "${addr[1]}"
tunnel_ping "$ns3" "${addr[2]}"

log "3. heartbeats go to B: B lists the nodes online with fresh heartbeats"
b_peers() { ip netns exec "$ns1" "$meshctl" coord-peers "$net_id" --coord "$url_b" --json; }
# every node's last_heartbeat is after SINCE (Unix seconds) and it is online.
fresh() {
    local pj
    pj=$(b_peers) || return 1
    [[ $(jget "$pj" "sorted((p['hostname'], p['online'] and __import__('calendar').timegm(__import__('time').strptime(p['last_heartbeat'], '%Y-%m-%dT%H:%M:%SZ')) > $1) for p in d['peers'])") == \
        "[('node1', True), ('node2', True), ('node3', True)]" ]]
}
# Registration at B counts as a heartbeat too: a last_heartbeat later than this second, when all
# had registered, is a heartbeat request's; a later one than the next check's second, another.
for round in 1 2; do
    since=$(date +%s)
    wait_until 15 fresh "$since" || fail "B's peers without a heartbeat after $since (round $round): $(b_peers)"
done
echo "    $(b_peers | "$py" -c 'import json, sys; print("; ".join(p["hostname"] + " online " + str(p["online"]) + " at " + p["last_heartbeat"] for p in json.load(sys.stdin)["peers"]))')"

log "4. a node joins through B; the others learn it from B and reach it"
join_node 4 "$url_b"
netns_meshfwd "$ns4" node4 "$tmp/node4/mesh.yaml" 0 "$api"
wait_until 30 on 4 "$url_b" 3 || fail "node4 not following B with 3 online peers: $(coord_field 4 "")"
addr[4]=$(v4 4)
echo "    node4: ${addr[4]}"
for n in 1 2 3; do
    wait_until 15 on "$n" "$url_b" 3 || fail "node$n did not learn node4 through B: $(coord_field "$n" "")"
done
tunnel_ping "$ns1" "${addr[4]}"
tunnel_ping "$ns2" "${addr[4]}"
tunnel_ping "$ns3" "${addr[4]}"
tunnel_ping "$ns4" "${addr[1]}"
kill -0 "${coord_pid[b]}" || fail "meshcoord B exited: $(tail -5 "$tmp/meshcoord-b.log")"

echo "PASS: meshcoord_failover ($SECONDS s)"
