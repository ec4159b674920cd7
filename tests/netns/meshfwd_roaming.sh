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
build=$(realpath "$1")
meshfwd=$build/tools/meshfwd
meshctl=$build/tools/meshctl
[[ -x $meshfwd && -x $meshctl ]] || fail "$meshfwd or $meshctl not built"
# The interpreter itself: a pyenv shim costs ~0.7 s a call, and some checks run in a loop.
py=$(python3 -c 'import sys; print(sys.executable)')
start=$SECONDS
size=$((100 * 1024 * 1024))
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

# peers_json NS: meshctl peers --json of the node in NS.
peers_json() { ip netns exec "$1" "$meshctl" peers --api "$api" --json; }

# endpoint_of NS PUBKEY: the endpoint NS's node has for that peer ("" when none).
endpoint_of() {
    peers_json "$1" | "$py" -c '
import json, sys
for p in json.load(sys.stdin)["peers"]:
    if p["public_key"] == sys.argv[1]:
        print(p.get("endpoint") or "")' "$2"
}

endpoint_is() { [[ $(endpoint_of "$1" "$2") == "$3" ]]; }

progress_at_least() { [[ -f $tmp/progress ]] && (($(cat "$tmp/progress") >= $1)); }

meshfwd_key a
a_pub=$pubkey
meshfwd_key b
b_pub=$pubkey
write_config a 10.100.0.1/24 "$b_pub" 10.100.0.2/32 192.0.2.2:51820
write_config b 10.100.0.2/24 "$a_pub" 10.100.0.1/32
write_xfer_tool

netns_pair
# Deleting a primary IPv4 address deletes its secondaries too, unless they are promoted.
n2 sysctl -qw net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.veth2.promote_secondaries=1
wait_secs 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
a_pid=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
b_pid=$spawned_pid

log "a -> b through the tunnel (a initiates; b learns a's endpoint)"
wait_secs 15 n1 ping -c1 -W1 10.100.0.2 || fail "no ping a -> b through the tunnel within 15 s"
[[ $(endpoint_of "$ns1" "$b_pub") == 192.0.2.2:51820 ]] ||
    fail "a has b at '$(endpoint_of "$ns1" "$b_pub")', want 192.0.2.2:51820 before roaming"
[[ $(endpoint_of "$ns2" "$a_pub") == 192.0.2.1:51820 ]] ||
    fail "b has a at '$(endpoint_of "$ns2" "$a_pub")', want 192.0.2.1:51820 (learned from a's initiation)"

log "100 MB b -> a over TCP, paced to 20 MB/s"
netns_spawn "$ns1" recv "$py" "$tmp/xfer.py" recv 10.100.0.1 5201 45 "$tmp/progress"
recv_pid=$spawned_pid
netns_spawn "$ns2" send "$py" "$tmp/xfer.py" send 10.100.0.1 5201 "$size" 20000000 60
send_pid=$spawned_pid
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
for pid in "$send_pid" "$recv_pid"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < 60)); do sleep 0.2; done
done
kill -0 "$send_pid" 2>/dev/null && fail "transfer still running 60 s after roaming (receiver at $(cat "$tmp/progress") bytes)"
kill -0 "$recv_pid" 2>/dev/null && fail "receiver still running after the sender ended"
wait "$send_pid" || fail "sender failed: $(cat "$tmp/send.log")"
wait "$recv_pid" || fail "receiver failed: $(cat "$tmp/recv.log")"
sent=$(tail -n1 "$tmp/send.log")
got=$(tail -n1 "$tmp/recv.log")
log "sent $sent"
log "got  $got ($((SECONDS - t0)) s after roaming)"
[[ $sent == "$got" ]] || fail "checksum or length mismatch"
[[ $sent == *"\"bytes\": $size,"* ]] || fail "sender did not send $size bytes"
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
