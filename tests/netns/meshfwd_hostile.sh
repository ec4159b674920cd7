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
build=$(realpath "$1")
meshfwd=$build/tools/meshfwd
meshctl=$build/tools/meshctl
[[ -x $meshfwd && -x $meshctl ]] || fail "$meshfwd or $meshctl not built"
# The interpreter itself: a pyenv shim costs ~0.7 s a call, and some checks run in a loop.
py=$(python3 -c 'import sys; print(sys.executable)')
start=$SECONDS
size=$((48 * 1024 * 1024))
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

status_json() { ip netns exec "$1" "$meshctl" status --api "$api" --json; }

# drops_json NS: the node's totals.drops as one JSON object.
drops_json() { status_json "$1" | "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["totals"]["drops"]))'; }

# endpoint_of NS PUBKEY: the endpoint NS's node has for that peer ("" when none).
endpoint_of() {
    ip netns exec "$1" "$meshctl" peers --api "$api" --json | "$py" -c '
import json, sys
for p in json.load(sys.stdin)["peers"]:
    if p["public_key"] == sys.argv[1]:
        print(p.get("endpoint") or "")' "$2"
}

meshfwd_key a
a_pub=$pubkey
meshfwd_key b
b_pub=$pubkey
write_config a 10.100.0.1/24 "$b_pub" 10.100.0.2/32 192.0.2.2:51820
write_config b 10.100.0.2/24 "$a_pub" 10.100.0.1/32 192.0.2.1:51820
write_xfer_tool

netns_pair
wait_secs 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
a_pid=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
b_pid=$spawned_pid
wait_secs 15 n2 ping -c1 -W1 10.100.0.1 || fail "no ping b -> a through the tunnel within 15 s"
drops_before=$(drops_json "$ns1")
log "a drops before: $drops_before"

log "legitimate traffic b -> a: ping -i 0.02 (13 s) and 48 MB over TCP at 4 MB/s"
netns_spawn "$ns1" recv "$py" "$tmp/xfer.py" recv 10.100.0.1 5201 20 "$tmp/progress"
recv_pid=$spawned_pid
netns_spawn "$ns2" send "$py" "$tmp/xfer.py" send 10.100.0.1 5201 "$size" 4000000 20
send_pid=$spawned_pid
netns_spawn "$ns2" ping ping -q -i 0.02 -c 650 -W 1 -w 25 10.100.0.1
ping_pid=$spawned_pid

log "hostile_sender.py: capture b's transport messages for 1.5 s, then 10k datagrams/s for 10 s"
netns_spawn "$ns2" hostile timeout 30 "$py" "$here/hostile_sender.py" --target 192.0.2.1:51820 \
    --capture-if veth2 --capture-seconds 1.5 --capture-max 4000 --rate 10000 --duration 10 --seed $$
hostile_pid=$spawned_pid
wait "$hostile_pid" || fail "hostile_sender failed: $(cat "$tmp/hostile.log")"
hostile=$(tail -n1 "$tmp/hostile.log")
log "hostile_sender: $hostile"

t0=$SECONDS
for pid in "$ping_pid" "$send_pid" "$recv_pid"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < 25)); do sleep 0.2; done
done
kill -0 "$a_pid" 2>/dev/null || fail "meshfwd a died: $(tail -n 20 "$tmp/meshfwd-a.log")"
wait_until 3 status_json "$ns1" || fail "a's API does not answer after the flood"
kill -0 "$send_pid" 2>/dev/null && fail "transfer still running 25 s after the flood (receiver at $(cat "$tmp/progress" 2>/dev/null || echo 0) bytes)"
kill -0 "$recv_pid" 2>/dev/null && fail "receiver still running after the sender ended"
wait "$send_pid" || fail "sender failed: $(cat "$tmp/send.log")"
wait "$recv_pid" || fail "receiver failed: $(cat "$tmp/recv.log")"
sent=$(tail -n1 "$tmp/send.log")
got=$(tail -n1 "$tmp/recv.log")
log "sent $sent"
log "got  $got"
[[ $sent == "$got" ]] || fail "checksum or length mismatch"
[[ $sent == *"\"bytes\": $size,"* ]] || fail "sender did not send $size bytes"

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
