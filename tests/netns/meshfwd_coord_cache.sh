#!/bin/bash
# A node started while meshcoord is unreachable comes up with its cached registration and peers.
#
#   ns1 ($ns1): meshfwd A, mca0          ns2 ($ns2): meshfwd B, mcb0
#   veth1 192.0.2.1/24  <------------->  veth2 192.0.2.2/24
#
# Neither config has node.address or peers: both name a meshcoord that is not there (two
# "replicas" on ports nothing listens on) and each has a cache file (mesh.discovery.cache_file,
# the format of control/coord_cache.cc) as a previous run would have left it: A's and B's
# registrations (10.100.0.1 / 10.100.0.2 in 10.100.0.0/16, ULA addresses in fd00:1:2::/48) and a
# peer list holding A, B and an offline node C. Checked:
#   1. each device has the cached addresses, IPv4 with the network's length and IPv6 with /48;
#   2. A <-> B by IPv4 and IPv6 (the cached endpoint and allowed IPs);
#   3. A runs B only: not itself, not the offline C;
#   4. `meshctl status` shows meshcoord not connected, registered, running from the cache file,
#      with the last error; the cache file stays 0600;
#   5. SIGHUP (a reload of a file with no static peers) keeps meshcoord's peer B.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
meshfwd_build "$1"
netns_python
api=127.0.0.1:7082

netns_pair
meshfwd_key a
pub_a=$pubkey
meshfwd_key b
pub_b=$pubkey
meshfwd_key c
pub_c=$pubkey
meshfwd_key server
pub_server=$pubkey

# config NAME DEVICE: a node that only knows meshcoord.
config() {
    cat <<EOF
node:
  name: $1
  private_key_file: $1.key
  listen_port: 51820
mesh:
  enabled: true
  network_id: cachenet
  device: {type: tun, name: $2, mtu: 1420}
  discovery:
    server: ["http://127.0.0.1:9", "127.0.0.2:9"]
    server_public_key: "$pub_server"
    heartbeat_interval: 5s
api: {listen: $api}
EOF
}

# cache NAME PUB IP4 IP6: the cache file a registered node would have, peers A, B and C (offline).
cache() {
    "$py" - "$1" "$2" "$3" "$4" "$pub_a" "$pub_b" "$pub_c" "$pub_server" <<'EOF'
import json, sys
name, pub, ip4, ip6, pub_a, pub_b, pub_c, pub_server = sys.argv[1:]
def view(key, host, v4, v6, endpoint, online):
    return {"id": "peer-" + host, "public_key": key, "virtual_ip": v4, "ipv6": v6,
            "endpoints": [endpoint], "endpoint": endpoint, "hostname": host, "os": "linux",
            "allowed_ips": [v4 + "/32", v6 + "/128"], "exit_node": False, "online": online,
            "approved": True, "last_heartbeat": "2026-12-05T10:00:00Z"}
doc = {"format": 1, "network_id": "cachenet", "public_key": pub, "server": "http://127.0.0.1:9",
       "version": 7,
       "registration": {"peer_id": "peer-" + name, "assigned_ip": ip4, "ipv6": ip6,
                        "network_cidr": "10.100.0.0/16", "ula_prefix": "fd00:1:2::/48",
                        "server_public_key": pub_server, "approved": True,
                        "heartbeat_interval_s": 30, "version": 7},
       "peers": [view(pub_a, "a", "10.100.0.1", "fd00:1:2:0:a::1", "192.0.2.1:51820", True),
                 view(pub_b, "b", "10.100.0.2", "fd00:1:2:0:b::1", "192.0.2.2:51820", True),
                 view(pub_c, "c", "10.100.0.3", "fd00:1:2:0:c::1", "192.0.2.3:51820", False)]}
print(json.dumps(doc))
EOF
}

config a mca0 >"$tmp/a.yaml"
config b mcb0 >"$tmp/b.yaml"
(umask 077 && cache a "$pub_a" 10.100.0.1 fd00:1:2:0:a::1 >"$tmp/a.peers.json")
(umask 077 && cache b "$pub_b" 10.100.0.2 fd00:1:2:0:b::1 >"$tmp/b.peers.json")

log "two nodes with meshcoord unreachable and a cache file each"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 0 "$api"

log "1. the cached addresses are on the devices"
for spec in "$ns1 mca0 10.100.0.1/16 fd00:1:2:0:a::1/48" "$ns2 mcb0 10.100.0.2/16 fd00:1:2:0:b::1/48"; do
    read -r ns dev v4 v6 <<<"$spec"
    addrs=$(ip -n "$ns" addr show dev "$dev")
    grep -q "inet $v4 " <<<"$addrs" || fail "$dev lacks $v4: $addrs"
    grep -q "inet6 $v6 " <<<"$addrs" || fail "$dev lacks $v6: $addrs"
    echo "    $dev: $v4, $v6"
done

log "2. A <-> B by IPv4 and by IPv6"
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns2" 10.100.0.1
tunnel_ping "$ns1" fd00:1:2:0:b::1

log "3. A runs B only (not itself, not the offline C)"
pj=$(peers_json "$ns1")
[[ $(jget "$pj" "[p['public_key'] for p in d['peers']] == ['$pub_b']") == True ]] ||
    fail "A's peers: $(jget "$pj" "[p['public_key'] for p in d['peers']]"), want only B $pub_b"
[[ $(peer_field "$ns1" "$pub_b" name) == b ]] || fail "B's name (its hostname at meshcoord) not shown"
[[ $(peer_field "$ns1" "$pub_b" endpoint) == 192.0.2.2:51820 ]] || fail "B's endpoint: $(peer_field "$ns1" "$pub_b" endpoint)"

log "4. meshctl status: not connected, registered, from the cache file"
st=$(status_json "$ns1")
[[ $(jget "$st" "d['coordination']['connected']") == False ]] || fail "connected: $(jget "$st" "d['coordination']")"
[[ $(jget "$st" "d['coordination']['registered']") == True ]] || fail "registered: $(jget "$st" "d['coordination']")"
[[ $(jget "$st" "d['coordination']['from_cache']") == True ]] || fail "from_cache: $(jget "$st" "d['coordination']")"
[[ $(jget "$st" "d['coordination']['version']") == 7 ]] || fail "version: $(jget "$st" "d['coordination']")"
[[ $(jget "$st" "d['coordination']['peers_online']") == 1 ]] || fail "peers_online: $(jget "$st" "d['coordination']")"
[[ $(jget "$st" "d['node']['address']") == 10.100.0.1/16 ]] || fail "node.address: $(jget "$st" "d['node']")"
# The session's error (connection refused, or a build without the client) shows up once the
# session has reported, within a few seconds.
last_error() { [[ $(jget "$(status_json "$ns1")" "d['coordination']['last_error'] is not None") == True ]]; }
wait_until 10 last_error || fail "no last_error after 10 s: $(jget "$(status_json "$ns1")" "d['coordination']")"
text=$(ip netns exec "$ns1" "$meshctl" status --api "$api")
grep -q "^meshcoord: http://127.0.0.[12]:9 (not connected), network cachenet$" <<<"$text" || fail "meshctl status: $text"
grep -q "^  registered: yes, as peer-a; addresses 10.100.0.1/16, fd00:1:2:0:a::1/48$" <<<"$text" || fail "meshctl status: $text"
grep -q "^  peers: 3 known, 1 online, version 7 (from the cache file)$" <<<"$text" || fail "meshctl status: $text"
grep -q "^  last error: " <<<"$text" || fail "meshctl status: $text"
echo "$text" | grep -A3 "^meshcoord" | sed 's/^/    /'
[[ $(stat -c %a "$tmp/a.peers.json") == 600 ]] || fail "cache file mode $(stat -c %a "$tmp/a.peers.json")"

log "5. SIGHUP keeps meshcoord's peers"
kill -HUP "$pid_a"
reloaded() { grep -q "reload done" "$tmp/meshfwd-a.log"; }
wait_until 10 reloaded || fail "A did not log the reload: $(tail -5 "$tmp/meshfwd-a.log")"
pj=$(peers_json "$ns1")
[[ $(jget "$pj" "[p['public_key'] for p in d['peers']] == ['$pub_b']") == True ]] ||
    fail "after SIGHUP A's peers: $(jget "$pj" "[p['public_key'] for p in d['peers']]")"
tunnel_ping "$ns1" 10.100.0.2

echo "PASS: meshfwd_coord_cache"
