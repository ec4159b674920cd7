#!/bin/bash
# meshfwd under hostile input: a flood of garbage, malformed, unknown-index and replayed
# datagrams at a's port while legitimate traffic runs; a must stay up, serve b, and count it all.
#
#   ns1 ($ns1)                                   ns2 ($ns2)
#   meshfwd a, --cores 0                         meshfwd b, --cores 1
#     tunnel 10.100.0.1/24                         tunnel 10.100.0.2/24
#     UDP 51820 <---------- veth1 <-> veth2 ------ UDP 51820 (b's transport messages to a are
#                192.0.2.1/24       192.0.2.2/24      captured here by an AF_PACKET socket)
#       ^                                          hostile_sender.py: ~10k datagrams/s for 10 s
#       '----------------------------------------- from another UDP port: random bytes, truncated
#                                                  WireGuard messages, unknown receiver indexes,
#                                                  replays of the captured transport messages
#   TCP receiver 10.100.0.1:5201  <--------------  TCP sender, 48 MB paced to 4 MB/s
#   ping replies                  <--------------  ping -i 0.02 10.100.0.1
#
# Checks: a alive and its API answering; the ping lost < 5%; the transfer's sha256 matches;
# a's drop counters grew by at least what was sent (less 2%), replay by at least the replays
# sent, unknown_index by at least the unknown-index messages sent; a still has b at
# 192.0.2.2:51820 (a replay from another port must not move the endpoint).
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
here=$(realpath "$(dirname "$0")")
meshfwd_build "$1"
netns_python
start=$SECONDS
size=$((48 * 1024 * 1024))
api=127.0.0.1:7082

meshfwd_key a
a_pub=$pubkey
meshfwd_key b
b_pub=$pubkey
# plain WireGuard peers (meshfwd: false): one UDP 5-tuple per peer pair, no lanes
{ node_config a mf0 10.100.0.1/24; peer_config "$b_pub" 10.100.0.2/32 192.0.2.2:51820 false; } >"$tmp/a.yaml"
{ node_config b mf0 10.100.0.2/24; peer_config "$a_pub" 10.100.0.1/32 192.0.2.1:51820 false; } >"$tmp/b.yaml"

netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
a_pid=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
b_pid=$spawned_pid
wait_until 15 n2 ping -c1 -W1 10.100.0.1 || fail "no ping b -> a through the tunnel within 15 s"
drops_before=$(drops_json "$ns1")
log "a drops before: $drops_before"

log "legitimate traffic b -> a: ping -i 0.02 (13 s) and 48 MB over TCP at 4 MB/s"
xfer_start "$ns1" "$ns2" 10.100.0.1 "$size" 4000000 20 20
netns_spawn "$ns2" ping ping -q -i 0.02 -c 650 -W 1 -w 25 10.100.0.1
ping_pid=$spawned_pid

log "hostile_sender.py: capture b's transport messages for 1.5 s, then 10k datagrams/s for 10 s"
netns_spawn "$ns2" hostile timeout 30 "$py" "$here/hostile_sender.py" --target 192.0.2.1:51820 \
    --capture-if veth2 --capture-seconds 1.5 --capture-max 4000 --rate 10000 --duration 10 --seed $$
hostile_pid=$spawned_pid
wait "$hostile_pid" || fail "hostile_sender failed: $(cat "$tmp/hostile.log")"
hostile=$(tail -n1 "$tmp/hostile.log")
log "hostile_sender: $hostile"

wait_pids $((SECONDS + 25)) "$ping_pid" "$send_pid" "$recv_pid"
kill -0 "$a_pid" 2>/dev/null || fail "meshfwd a died: $(tail -n 20 "$tmp/meshfwd-a.log")"
wait_until 3 status_json "$ns1" || fail "a's API does not answer after the flood"
xfer_check "$size" "25 s after the flood"

wait "$ping_pid" || true  # ping exits 1 when any reply is missing; the loss is judged below
ping_summary=$(grep 'packets transmitted' "$tmp/ping.log") || fail "no ping summary: $(cat "$tmp/ping.log")"
log "ping: $ping_summary"
read -r ping_tx ping_rx < <(sed -E 's/^([0-9]+) packets transmitted, ([0-9]+) received.*/\1 \2/' <<<"$ping_summary")
((ping_tx >= 600)) || fail "ping sent only $ping_tx requests"
(((ping_tx - ping_rx) * 100 < 5 * ping_tx)) || fail "ping lost $((ping_tx - ping_rx)) of $ping_tx (>= 5%)"

drops_after=$(drops_json "$ns1")
log "a drops after: $drops_after"
# shellcheck disable=SC2016  # awk program
rcvbuf_errors=$(n1 awk '/^Udp:/ {if (!h) {for (i = 1; i <= NF; i++) c[$i] = i; h = 1} else print $c["RcvbufErrors"]}' /proc/net/snmp)
"$py" - "$drops_before" "$drops_after" "$hostile" "$rcvbuf_errors" <<'PY' || fail "a's drop counters do not account for the hostile datagrams"
import json, sys
before, after, hostile = (json.loads(a) for a in sys.argv[1:4])
grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
sent = hostile["sent"]
total, tolerance = hostile["total"], hostile["total"] // 50
print("    a's drops grew by %s (sum %d); sent %d (%s); kernel UDP RcvbufErrors in ns1: %s"
      % (grew, sum(grew.values()), total, sent, sys.argv[4]))
ok = True
if sum(grew.values()) < total - tolerance:
    print("    sum of drop counters grew by %d < %d sent - %d tolerance" % (sum(grew.values()), total, tolerance))
    ok = False
if grew.get("replay", 0) < sent["replay"]:
    print("    replay grew by %d < %d replays sent" % (grew.get("replay", 0), sent["replay"]))
    ok = False
if grew.get("unknown_index", 0) < sent["unknown_index"]:
    print("    unknown_index grew by %d < %d sent" % (grew.get("unknown_index", 0), sent["unknown_index"]))
    ok = False
sys.exit(0 if ok else 1)
PY

ep=$(endpoint_of "$ns1" "$b_pub")
[[ $ep == 192.0.2.2:51820 ]] || fail "a has b at '$ep' after the flood, want 192.0.2.2:51820 (moved by a replay?)"
kill -0 "$b_pid" 2>/dev/null || fail "meshfwd b died: $(tail -n 20 "$tmp/meshfwd-b.log")"
echo "PASS: meshfwd under hostile input ($((SECONDS - start))s)"
