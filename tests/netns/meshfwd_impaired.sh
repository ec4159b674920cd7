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
# drop loses a whole batch (bursty loss; b counts those datagrams as tx_error), per datagram
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
build=$(realpath "$1")
meshfwd=$build/tools/meshfwd
meshctl=$build/tools/meshctl
[[ -x $meshfwd && -x $meshctl ]] || fail "$meshfwd or $meshctl not built"
# The interpreter itself: a pyenv shim costs ~0.7 s a call, and some checks run in a loop.
py=$(python3 -c 'import sys; print(sys.executable)')
start=$SECONDS
size=$((50 * 1024 * 1024))
api=127.0.0.1:7082

# wait_secs SECONDS CMD...: like wait_until, but bounded by wall time even when each try takes
# a while itself (ping -W1), which wait_until's count of tries does not bound.
wait_secs() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

# One TCP transfer with a checksum on both ends (same tool in each meshfwd_*.sh test).
write_xfer_tool() {
    cat >"$tmp/xfer.py" <<'PY'
"""recv HOST PORT TIMEOUT PROGRESS_FILE | send HOST PORT BYTES RATE TIMEOUT: one TCP stream,
sha256 on both ends, one JSON line {"bytes","sha256"}; RATE bytes/s (0: as fast as possible).
Every socket wait is bounded by TIMEOUT; the sender retries the connection until then."""
import hashlib, json, os, random, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "recv":
    timeout, progress = float(sys.argv[4]), sys.argv[5]
    ls = socket.create_server((host, port))
    ls.settimeout(timeout)
    c, _ = ls.accept()
    c.settimeout(timeout)
    h, n, mark = hashlib.sha256(), 0, 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
        if n - mark >= 1 << 20:
            mark = n
            with open(progress + ".new", "w") as f:
                f.write(str(n))
            os.replace(progress + ".new", progress)
else:
    size, rate, timeout = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    end = time.monotonic() + timeout
    while True:
        try:
            c = socket.create_connection((host, port), timeout=2)
            break
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)
    c.settimeout(timeout)
    block = random.Random(7).randbytes(1 << 20) * 2
    h, n, t0 = hashlib.sha256(), 0, time.monotonic()
    while n < size:
        i = (n >> 16) * 4099 % (1 << 20)
        d = block[i:i + min(1 << 16, size - n)]
        c.sendall(d)
        h.update(d)
        n += len(d)
        if rate > 0:
            ahead = t0 + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)  # wait for the receiver's close: everything was read
print(json.dumps({"bytes": n, "sha256": h.hexdigest()}), flush=True)
PY
}

# write_config NAME ADDRESS PEER_PUBKEY PEER_ALLOWED [PEER_ENDPOINT]
write_config() {
    local name=$1 address=$2 peer=$3 allowed=$4 endpoint=${5:-}
    {
        echo "node: {name: $name, private_key_file: $name.key, listen_port: 51820, address: $address}"
        echo "mesh: {device: {type: tun, name: mf0, mtu: 1420}}"
        echo "peers:"
        echo "  - public_key: \"$peer\""
        [[ -z $endpoint ]] || echo "    endpoint: $endpoint"
        echo "    allowed_ips: [$allowed]"
        echo "    meshfwd: false"   # plain WireGuard: one UDP 5-tuple per peer pair, no lanes
        echo "dataplane: {poll: adaptive, batch: 64, crypto: auto}"
        echo "api: {listen: $api}"
    } >"$tmp/$name.yaml"
}

# drops_json NS: the node's totals.drops as one JSON object.
drops_json() {
    ip netns exec "$1" "$meshctl" status --api "$api" --json |
        "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["totals"]["drops"]))'
}

# drop_count JSON REASON: that reason's count (0 when absent).
drop_count() { "$py" -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))' "$1" "$2"; }

meshfwd_key a
a_pub=$pubkey
meshfwd_key b
b_pub=$pubkey
write_config a 10.100.0.1/24 "$b_pub" 10.100.0.2/32 192.0.2.1:51999
write_config b 10.100.0.2/24 "$a_pub" 10.100.0.1/32
write_xfer_tool

netns_pair
wait_secs 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

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
wait_secs 20 n1 ping -c1 -W1 10.100.0.2 || fail "no ping a -> b through the tunnel within 20 s"

log "50 MB b -> a over TCP"
t0=$SECONDS
netns_spawn "$ns1" recv "$py" "$tmp/xfer.py" recv 10.100.0.1 5201 30 "$tmp/progress"
recv_pid=$spawned_pid
netns_spawn "$ns2" send "$py" "$tmp/xfer.py" send 10.100.0.1 5201 "$size" 0 30
send_pid=$spawned_pid
for pid in "$send_pid" "$recv_pid"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < 120)); do sleep 0.2; done
done
kill -0 "$send_pid" 2>/dev/null && fail "transfer still running after 120 s (receiver at $(cat "$tmp/progress" 2>/dev/null || echo 0) bytes)"
kill -0 "$recv_pid" 2>/dev/null && fail "receiver still running after the sender ended"
wait "$send_pid" || fail "sender failed: $(cat "$tmp/send.log")"
wait "$recv_pid" || fail "receiver failed: $(cat "$tmp/recv.log")"
sent=$(tail -n1 "$tmp/send.log")
got=$(tail -n1 "$tmp/recv.log")
log "sent $sent"
log "got  $got ($((SECONDS - t0)) s)"
[[ $sent == "$got" ]] || fail "checksum or length mismatch"
[[ $sent == *"\"bytes\": $size,"* ]] || fail "sender did not send $size bytes"

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
