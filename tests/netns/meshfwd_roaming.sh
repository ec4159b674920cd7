#!/bin/bash
# meshfwd roaming: a node's underlay address changes in the middle of a TCP transfer, and its
# peer follows it, learning the new endpoint from authenticated packets alone.
#
#   ns1 ($ns1)                                     ns2 ($ns2)
#   meshfwd a, --cores 0                           meshfwd b, --cores 1
#     tunnel 10.100.0.1/24 on mf0                    tunnel 10.100.0.2/24 on mf0
#     peer b: endpoint 192.0.2.2:51820               peer a: no endpoint (learned from a's initiation)
#     UDP 51820 ------------ veth1 <-> veth2 ------- UDP 51820
#                  192.0.2.1/24       192.0.2.2/24  --(mid-transfer)-->  192.0.2.22/24
#   TCP receiver 10.100.0.1:5201  <------------------  TCP sender, 100 MB, paced to 20 MB/s
#
# Mid-transfer 192.0.2.22 is added to veth2 and 192.0.2.2 deleted (promote_secondaries keeps
# the new one), so b's packets now come from 192.0.2.22. Checks: the transfer completes within
# a bounded time with a matching sha256; a's `meshctl peers --json` shows b at
# 192.0.2.22:51820; a can still reach b (its replies go to the new endpoint); both alive.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3
meshfwd_build "$1"
netns_python
start=$SECONDS
size=$((100 * 1024 * 1024))
api=127.0.0.1:7082

endpoint_is() { [[ $(endpoint_of "$1" "$2") == "$3" ]]; }

progress_at_least() { [[ -f $tmp/progress ]] && (($(cat "$tmp/progress") >= $1)); }

meshfwd_key a
a_pub=$pubkey
meshfwd_key b
b_pub=$pubkey
# plain WireGuard peers (meshfwd: false): one UDP 5-tuple per peer pair, no lanes
{ node_config a mf0 10.100.0.1/24; peer_config "$b_pub" 10.100.0.2/32 192.0.2.2:51820 false; } >"$tmp/a.yaml"
{ node_config b mf0 10.100.0.2/24; peer_config "$a_pub" 10.100.0.1/32 "" false; } >"$tmp/b.yaml"

netns_pair
# Deleting a primary IPv4 address deletes its secondaries too, unless they are promoted.
n2 sysctl -qw net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.veth2.promote_secondaries=1
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
a_pid=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
b_pid=$spawned_pid

log "a -> b through the tunnel (a initiates; b learns a's endpoint)"
wait_until 15 n1 ping -c1 -W1 10.100.0.2 || fail "no ping a -> b through the tunnel within 15 s"
[[ $(endpoint_of "$ns1" "$b_pub") == 192.0.2.2:51820 ]] ||
    fail "a has b at '$(endpoint_of "$ns1" "$b_pub")', want 192.0.2.2:51820 before roaming"
[[ $(endpoint_of "$ns2" "$a_pub") == 192.0.2.1:51820 ]] ||
    fail "b has a at '$(endpoint_of "$ns2" "$a_pub")', want 192.0.2.1:51820 (learned from a's initiation)"

log "100 MB b -> a over TCP, paced to 20 MB/s"
xfer_start "$ns1" "$ns2" 10.100.0.1 "$size" 20000000 45 60
wait_until 20 progress_at_least $((25 * 1024 * 1024)) ||
    fail "the transfer did not reach 25 MB within 20 s (at $(cat "$tmp/progress" 2>/dev/null || echo 0) bytes)"

log "roaming: b moves from 192.0.2.2 to 192.0.2.22 at $(cat "$tmp/progress") bytes"
n2 ip addr add 192.0.2.22/24 dev veth2
n2 ip addr del 192.0.2.2/24 dev veth2
n2 ip -4 addr show dev veth2 | grep -q 'inet 192.0.2.22/24' || fail "192.0.2.22 was not kept on veth2"
roamed_at=$(cat "$tmp/progress")

# Until b's first packet from the new address reaches a, TCP backs off (RTO doubling); the
# receiver gives up after 45 s without data, and the rest must be done 60 s after roaming.
# (wireguard-go, re-handshaking from a stale source address, needs about 30 s here.)
t0=$SECONDS
wait_pids $((t0 + 60)) "$send_pid" "$recv_pid"
xfer_check "$size" "60 s after roaming"
log "the transfer ended $((SECONDS - t0)) s after roaming"
((roamed_at < size)) || fail "the transfer ended before roaming (at $roamed_at bytes): not a mid-transfer test"

log "a must now have b at 192.0.2.22:51820"
wait_until 5 endpoint_is "$ns1" "$b_pub" 192.0.2.22:51820 ||
    fail "a has b at '$(endpoint_of "$ns1" "$b_pub")', want 192.0.2.22:51820"
n1 ping -c3 -i 0.2 -W1 10.100.0.2 >/dev/null || fail "a cannot reach b after roaming"
kill -0 "$a_pid" 2>/dev/null || fail "meshfwd a died: $(tail -n 20 "$tmp/meshfwd-a.log")"
kill -0 "$b_pid" 2>/dev/null || fail "meshfwd b died: $(tail -n 20 "$tmp/meshfwd-b.log")"
peers_json "$ns1" | "$py" -c '
import json, sys
for p in json.load(sys.stdin)["peers"]:
    print("    a sees peer %s... at %s: rx %s B, tx %s B, session %s" % (
        p["public_key"][:8], p["endpoint"], p["rx_bytes"], p["tx_bytes"], p["session"]))'
echo "PASS: meshfwd roaming ($((SECONDS - start))s)"
