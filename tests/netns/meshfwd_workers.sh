#!/bin/bash
# Two workers per node, and one peer pair spread over both: between two meshfwd nodes the
# traffic runs over several UDP 5-tuples ("lanes"), so every worker of both ends gets a share.
#
#   ns1 ($ns1)                                    ns2 ($ns2)
#   meshfwd a --cores 0-1                         meshfwd b --cores 0-1
#     mfa0 10.100.0.1/24                            mfb0 10.100.0.2/24 (iperf3 -s)
#     UDP 51820 + lanes  --- veth1 <-> veth2 --->   UDP 51820 + lanes
#                  192.0.2.1/24   192.0.2.2/24
#
# Both peer entries say `meshfwd: true`. Checks: iperf3 -P 4 -t 5 a -> b succeeds; on each node
# each worker carried at least 5% of that node's packets (rx + tx, from `meshctl status --json`);
# `meshctl peers --json` reports lanes >= 2 on both sides. Prints the per-worker table.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs iperf3 python3 ping ss
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
min_share_pct=5

iperf_listening() { [[ -n $(n2 ss -Hltn 'sport = :5201') ]]; }

meshfwd_pair_configs

netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0-1 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 0-1 "$api"
pid_b=$spawned_pid

log "handshake (ping a -> b)"
tunnel_ping "$ns1" 10.100.0.2

log "iperf3 -P 8 -t 5, a -> b"
netns_spawn "$ns2" iperf3-server iperf3 -s -1 -B 10.100.0.2
wait_until 5 iperf_listening || fail "iperf3 server did not listen: $(cat "$tmp/iperf3-server.log")"
out=$(n1 timeout 30 iperf3 -c 10.100.0.2 -P 8 -t 5 --connect-timeout 3000 2>&1) ||
    fail "iperf3 client failed: $(tail -5 <<<"$out")"
grep -E '\[SUM\].*(sender|receiver)' <<<"$out" | sed 's/^/    /'

# Both checks run and print before the test fails, so one run shows the whole picture.
problems=()
log "per-worker packets (status --json)"
for side in a b; do
    ns=$ns1
    [[ $side == a ]] || ns=$ns2
    st=$(status_json "$ns") || fail "status --json on $side"
    "$py" - "$side" "$st" "$min_share_pct" <<'PY' || problems+=("node $side: a worker carried less than $min_share_pct% of the packets (table above)")
import json, sys
side, doc, min_pct = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
workers = doc["workers"]
total = sum(w["rx_packets"] + w["tx_packets"] for w in workers)
print("    node %s: %d workers, %d packets" % (side, len(workers), total))
print("    %-6s %-4s %12s %12s %7s" % ("worker", "cpu", "rx_packets", "tx_packets", "share"))
ok = len(workers) == 2 and total > 0
for w in workers:
    n = w["rx_packets"] + w["tx_packets"]
    pct = 100.0 * n / total if total else 0.0
    print("    %-6s %-4s %12d %12d %6.1f%%" % (w["id"], w["cpu"], w["rx_packets"], w["tx_packets"], pct))
    ok = ok and pct >= min_pct
if len(workers) != 2:
    print("    want 2 workers (--cores 0-1), got %d" % len(workers))
sys.exit(0 if ok else 1)
PY
done

log "lanes (peers --json)"
lanes_a=$(peer_field "$ns1" "$pub_b" lanes)
lanes_b=$(peer_field "$ns2" "$pub_a" lanes)
echo "    a -> b: $lanes_a lanes; b -> a: $lanes_b lanes"
[[ $lanes_a -ge 2 && $lanes_b -ge 2 ]] || problems+=("lanes a=$lanes_a b=$lanes_b, want >= 2 on both sides")
((${#problems[@]} == 0)) || fail "$(printf '%s; ' "${problems[@]}")"

kill -0 "$pid_a" 2>/dev/null || fail "meshfwd a died: $(tail -5 "$tmp/meshfwd-a.log")"
kill -0 "$pid_b" 2>/dev/null || fail "meshfwd b died: $(tail -5 "$tmp/meshfwd-b.log")"
echo "PASS: two workers per node share one peer pair ($((SECONDS - start))s)"
