#!/bin/bash
# Lanes belong to a session: a `meshfwd: true` peer that comes back as a plain WireGuard with the
# same key must not be sent mesh frames or traffic on its old lane ports (before the fix: a black
# hole that only a restart cured).
#
#   ns1: meshfwd a, 2 workers  <-- veth 192.0.2.1 / .2 -->  ns2: meshfwd b, 2 workers; later
#                                                                wireguard-go with b's key
# 1. a and b (both `meshfwd: true`): pings both ways; a knows b's lanes.
# 2. SIGHUP with `meshfwd: false` for b on a: a forgets b's lanes at once; pings still pass.
# 3. a restarted with `meshfwd: true`: lanes again. Then b is stopped and wireguard-go starts in
#    its place (same key, same port): once it has handshaken, pings pass both ways and a uses
#    no lanes for it.
# Arg: $1 build dir. Root only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wireguard-go wg python3 ping
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
umask 077

lanes_of_b() { peer_field "$ns1" "$pub_b" lanes; }
has_lanes() { [[ $(lanes_of_b) -gt 0 ]]; }

meshfwd_pair_configs
netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

log "1. meshfwd a <-> meshfwd b"
netns_meshfwd "$ns1" a1 "$tmp/a.yaml" 0-1 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 0-1 "$api"
pid_b=$spawned_pid
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns2" 10.100.0.1
wait_until 5 has_lanes || fail "a never learnt b's lanes"
echo "    a knows $(lanes_of_b) lane(s) of b"

log "2. reload a with meshfwd: false for b"
sed -i 's/meshfwd: true/meshfwd: false/' "$tmp/a.yaml"
kill -HUP "$pid_a"
wait_until 5 grep -q "reload done" "$tmp/meshfwd-a1.log" || fail "a did not reload"
[[ $(lanes_of_b) -eq 0 ]] || fail "a still has $(lanes_of_b) lane(s) of b after b became a plain peer"
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns2" 10.100.0.1

log "3. a restarted (meshfwd: true); then b replaced by wireguard-go with b's key"
kill -TERM "$pid_a"
wait_until 5 not_running "$pid_a" || fail "meshfwd a still running 5 s after SIGTERM"
sed -i 's/meshfwd: false/meshfwd: true/' "$tmp/a.yaml"
netns_meshfwd "$ns1" a2 "$tmp/a.yaml" 0-1 "$api"
pid_a=$spawned_pid
tunnel_ping "$ns1" 10.100.0.2
wait_until 5 has_lanes || fail "restarted a never learnt b's lanes"
echo "    a knows $(lanes_of_b) lane(s) of b"
kill -TERM "$pid_b"
wait_until 5 not_running "$pid_b" || fail "meshfwd b still running 5 s after SIGTERM"
wgif=wgs$$
netns_wireguard_go "$ns2" "$wgif"
wg_pid=$spawned_pid
n2 wg set "$wgif" private-key "$tmp/b.key" listen-port 51820 peer "$pub_a" allowed-ips 10.100.0.1/32 \
    endpoint 192.0.2.1:51820
n2 ip addr add 10.100.0.2/24 dev "$wgif"
n2 ip link set "$wgif" mtu 1420 up
tunnel_ping "$ns2" 10.100.0.1
tunnel_ping "$ns1" 10.100.0.2
[[ $(lanes_of_b) -eq 0 ]] || fail "a still sends to $(lanes_of_b) lane(s) of a peer that is now wireguard-go"
n2 wg show "$wgif" | sed 's/^/    /'
if grep -q "invalid IP version" "$tmp/wireguard-go-$wgif.log"; then
    echo "    (wireguard-go logged a mesh frame: $(grep -c 'invalid IP version' "$tmp/wireguard-go-$wgif.log"))"
fi
kill -0 "$wg_pid" 2>/dev/null || fail "wireguard-go died"
echo "PASS: lanes are per session; a peer swapped to wireguard-go keeps working ($((SECONDS - start))s)"
