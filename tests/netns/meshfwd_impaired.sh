#!/bin/bash
# meshfwd on an impaired underlay: 5% random loss each way plus reordering, and no false drops.
#
#   ns1 ($ns1)                                                  ns2 ($ns2)
#   meshfwd a, --cores 0                                        meshfwd b, --cores 1
#     tunnel 10.100.0.1/24                                        tunnel 10.100.0.2/24
#     peer b: endpoint 192.0.2.1:51999 (the relay)                peer a: no endpoint (learns the relay's)
#     UDP 51820 <-> impair_relay.py 192.0.2.1:51999 <-- veth --> UDP 51820, nftables table inet
#                   (holds ~2.5% back 1-5 ms, swaps ~2.5%          "impair": drops 5% of udp 51820
#                    with the next one; both directions)            in (input) and out (output)
#   TCP receiver 10.100.0.1:5201  <---------------------------  TCP sender, 50 MB
#
# nftables sees a UDP GSO super-packet as one packet before it is segmented, so on b's output a
# drop loses a whole batch (bursty loss; b counts those datagrams as tx_error_udp), per datagram
# elsewhere. Both peers are plain WireGuard (meshfwd: false): one 5-tuple, all through the relay.
# Checks: the transfer completes within 120 s with a matching sha256; on both nodes the drop
# counters show replay == 0 (reordering inside the 8128-packet window must be accepted) and
# bad_auth == 0; the relay did reorder and nftables did drop (else the test proved nothing).
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 nft
here=$(realpath "$(dirname "$0")")
meshfwd_build "$1"
netns_python
start=$SECONDS
size=$((50 * 1024 * 1024))
api=127.0.0.1:7082

meshfwd_key a
a_pub=$pubkey
meshfwd_key b
b_pub=$pubkey
# plain WireGuard peers (meshfwd: false): one UDP 5-tuple per peer pair, no lanes
{ node_config a mf0 10.100.0.1/24; peer_config "$b_pub" 10.100.0.2/32 192.0.2.1:51999 false; } >"$tmp/a.yaml"
{ node_config b mf0 10.100.0.2/24; peer_config "$a_pub" 10.100.0.1/32 "" false; } >"$tmp/b.yaml"

netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

log "nftables in $ns2: drop 5% of udp port 51820 each way"
n2 nft -f - <<'NFT' || fail "nft could not load the loss rules (numgen support missing?)"
table inet impair {
    chain input {
        type filter hook input priority 0; policy accept;
        udp dport 51820 numgen random mod 100 < 5 counter drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        udp sport 51820 numgen random mod 100 < 5 counter drop
    }
}
NFT

log "reordering relay in $ns1: 192.0.2.1:51999 <-> 192.0.2.2:51820"
netns_spawn "$ns1" relay "$py" "$here/impair_relay.py" --listen 192.0.2.1:51999 --peer 192.0.2.2:51820 \
    --lifetime 150 --seed $$ --stats "$tmp/relay.json"
relay_pid=$spawned_pid
wait_until 5 grep -q '^listening on' "$tmp/relay.log" || fail "relay did not start: $(cat "$tmp/relay.log")"

netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
a_pid=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
b_pid=$spawned_pid

# A lost initiation or response is retried after REKEY_TIMEOUT (5 s); allow a few.
log "a -> b through the tunnel and the relay"
wait_until 20 n1 ping -c1 -W1 10.100.0.2 || fail "no ping a -> b through the tunnel within 20 s"

log "50 MB b -> a over TCP"
t0=$SECONDS
xfer_start "$ns1" "$ns2" 10.100.0.1 "$size" 0 30 30
wait_pids $((t0 + 120)) "$send_pid" "$recv_pid"
xfer_check "$size" "after 120 s"
log "transfer took $((SECONDS - t0)) s"

kill -TERM "$relay_pid"
wait "$relay_pid" || fail "relay failed: $(cat "$tmp/relay.log")"
relay=$(cat "$tmp/relay.json")
nft_drops=$(n2 nft list table inet impair | grep -o 'packets [0-9]*' | awk '{s += $2} END {print s + 0}')
log "relay: $relay; nftables dropped $nft_drops datagrams"
"$py" -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["delayed"] > 0 and r["swapped"] > 0, "the relay reordered nothing"
assert r["to_peer"] > 1000 and r["to_client"] > 1000, "the relay carried little traffic"' "$relay" ||
    fail "the impairment did not happen"
((nft_drops > 0)) || fail "nftables dropped nothing"

for node in a b; do
    ns=$ns1
    [[ $node == a ]] || ns=$ns2
    drops=$(drops_json "$ns")
    log "$node drops: $drops"
    [[ $(drop_count "$drops" replay) -eq 0 ]] || fail "$node: replay drops on a reordering path (false replays)"
    [[ $(drop_count "$drops" bad_auth) -eq 0 ]] || fail "$node: bad_auth drops without any corruption"
done
kill -0 "$a_pid" 2>/dev/null || fail "meshfwd a died: $(tail -n 20 "$tmp/meshfwd-a.log")"
kill -0 "$b_pid" 2>/dev/null || fail "meshfwd b died: $(tail -n 20 "$tmp/meshfwd-b.log")"
echo "PASS: meshfwd over 5% loss and reordering ($((SECONDS - start))s)"
