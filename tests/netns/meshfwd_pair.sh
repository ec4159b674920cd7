#!/bin/bash
# Two meshfwd nodes talking to each other: the basic end-to-end test of the data plane.
#
#   ns1 ($ns1)                                    ns2 ($ns2)
#   meshfwd a --cores 0                           meshfwd b --cores 1
#     mfa0 10.100.0.1/24, fd00:100::1/64            mfb0 10.100.0.2/24, fd00:100::2/64
#     UDP 51820  ------ veth1 <-> veth2 ------->    UDP 51820
#                  192.0.2.1/24   192.0.2.2/24
#
# Checks: ping both ways over IPv4 and IPv6 inside the tunnel; a 200 MiB TCP transfer a -> b
# arrives with the same sha256; `meshctl peers` (text) shows a handshake and traffic; the JSON
# counters show > 200 MiB sent by a and received by b, and no bad_auth/replay/unknown_index drops;
# SIGTERM makes b exit 0 within 5 s, remove mfb0, and log no error.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
build=$(realpath "$1")
meshctl=$build/tools/meshctl
[[ -x $build/tools/meshfwd && -x $meshctl ]] || fail "meshfwd/meshctl not built in $build"
start=$SECONDS
api=127.0.0.1:7082

# --- helpers (kept in this file: each netns test stands alone) --------------------------------

# write_config FILE NAME DEVICE INDEX PEER_PUB PEER_INDEX PEER_ENDPOINT
# A node 10.100.0.INDEX / fd00:100::INDEX with one peer (meshfwd: true).
write_config() {
    cat >"$1" <<EOF
node:
  name: $2
  private_key_file: $2.key
  listen_port: 51820
  address: [10.100.0.$4/24, fd00:100::$4/64]
mesh:
  device: {type: tun, name: $3, mtu: 1420}
peers:
  - public_key: "$5"
    endpoint: $7
    allowed_ips: [10.100.0.$6/32, fd00:100::$6/128]
    meshfwd: true
dataplane: {poll: adaptive, batch: 64, crypto: auto}
api: {listen: $api}
EOF
}

# tunnel_ping NS ADDR: the first pings may wait for the handshake, so up to 5 tries of
# `ping -c 3 -W 2`; once one answers, a further `ping -c 3` must get all 3 replies.
tunnel_ping() {
    local ns=$1 addr=$2 i out
    for ((i = 0; i < 5; i++)); do
        ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 "$addr" >/dev/null 2>&1 && break
    done
    ((i < 5)) || fail "ping $addr from $ns: no reply in 5 tries of 3"
    out=$(ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 "$addr" 2>&1) || true
    grep -q " 3 received" <<<"$out" || fail "ping $addr from $ns after the handshake: $(tail -2 <<<"$out")"
    echo "    $ns -> $addr: $(grep -o '[0-9]* packets transmitted.*loss' <<<"$out")"
}

# jget JSON EXPR: prints the python expression EXPR evaluated with d = the parsed JSON.
jget() {
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
peers_json() { ip netns exec "$1" "$meshctl" peers --api "$api" --json; }
status_json() { ip netns exec "$1" "$meshctl" status --api "$api" --json; }
not_running() { ! kill -0 "$1" 2>/dev/null; }

# A TCP sender/receiver pair that checksums what arrives. recv prints "<bytes> <sha256>" once the
# sender closes; send retries the connection for 10 s (the receiver may not listen yet).
cat >"$tmp/xfer.py" <<'PY'
import hashlib, socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
if mode == "recv":
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(30)
    conn, _ = srv.accept()
    conn.settimeout(30)
    h, n = hashlib.sha256(), 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    print(n, h.hexdigest(), flush=True)
    conn.close()
else:
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    conn.settimeout(30)
    t0 = time.monotonic()
    with open(sys.argv[4], "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            conn.sendall(b)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)  # the receiver closes after it has read everything
    print("sent in %.2f s" % (time.monotonic() - t0))
PY

# tcp_transfer SRC_NS DST_NS DST_ADDR FILE: FILE from SRC_NS to DST_ADDR:5001; sha256 must match.
tcp_transfer() {
    local src=$1 dst=$2 addr=$3 file=$4 n sum want
    netns_spawn "$dst" xfer-recv timeout 60 python3 "$tmp/xfer.py" recv "$addr" 5001
    local rpid=$spawned_pid
    ip netns exec "$src" timeout 60 python3 "$tmp/xfer.py" send "$addr" 5001 "$file" ||
        fail "TCP transfer to $addr: sender failed"
    wait "$rpid" || fail "TCP transfer to $addr: receiver failed: $(cat "$tmp/xfer-recv.log")"
    read -r n sum <"$tmp/xfer-recv.log" || true
    want=$(sha256sum "$file" | cut -d' ' -f1)
    [[ $n -eq $(stat -c %s "$file") && $sum == "$want" ]] ||
        fail "TCP transfer to $addr: received $n bytes sha256 $sum, sent $(stat -c %s "$file") bytes sha256 $want"
    echo "    $n bytes, sha256 $sum matches"
}

# --- setup -----------------------------------------------------------------------------------

meshfwd_key a
pub_a=$pubkey
meshfwd_key b
pub_b=$pubkey
write_config "$tmp/a.yaml" a mfa0 1 "$pub_b" 2 192.0.2.2:51820
write_config "$tmp/b.yaml" b mfb0 2 "$pub_a" 1 192.0.2.1:51820

netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
pid_b=$spawned_pid

# --- checks ----------------------------------------------------------------------------------

log "ping inside the tunnel, both ways, IPv4 and IPv6"
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns2" 10.100.0.1
tunnel_ping "$ns1" fd00:100::2
tunnel_ping "$ns2" fd00:100::1

log "200 MiB over TCP a -> b, checksummed"
head -c 200M /dev/urandom >"$tmp/blob"
tcp_transfer "$ns1" "$ns2" 10.100.0.2 "$tmp/blob"

log "meshctl peers on a (text)"
text=$(n1 "$meshctl" peers --api "$api") || fail "meshctl peers failed"
printf '%s\n' "$text" | sed 's/^/    /'
grep -qF "$pub_b" <<<"$text" || fail "meshctl peers: b's public key not listed"
grep -q "latest handshake:" <<<"$text" || fail "meshctl peers: no 'latest handshake' line"
line=$(grep -m1 "transfer:" <<<"$text") || fail "meshctl peers: no 'transfer' line"
[[ $line =~ transfer:\ (.+)\ received,\ (.+)\ sent ]] || fail "meshctl peers: odd transfer line: $line"
[[ ${BASH_REMATCH[1]} != "0 B" && ${BASH_REMATCH[2]} != "0 B" ]] || fail "meshctl peers: zero transfer: $line"

log "counters (JSON)"
min=$((200 * 1024 * 1024))
pa=$(peers_json "$ns1") || fail "peers --json on a"
pb=$(peers_json "$ns2") || fail "peers --json on b"
tx_a=$(jget "$pa" "[p for p in d['peers'] if p['public_key'] == '$pub_b'][0]['tx_bytes']")
rx_b=$(jget "$pb" "[p for p in d['peers'] if p['public_key'] == '$pub_a'][0]['rx_bytes']")
echo "    a sent $tx_a bytes to b; b received $rx_b bytes from a"
[[ $tx_a -gt $min ]] || fail "a's tx_bytes to b is $tx_a, want > $min (200 MiB were sent)"
[[ $rx_b -gt $min ]] || fail "b's rx_bytes from a is $rx_b, want > $min (200 MiB were received)"
for ns in "$ns1" "$ns2"; do
    st=$(status_json "$ns") || fail "status --json in $ns"
    echo "    $ns drops: $(jget "$st" 'd["totals"]["drops"]')"
    bad=$(jget "$st" 'sum(d["totals"]["drops"].get(k, 0) for k in ("bad_auth", "replay", "unknown_index"))')
    [[ $bad -eq 0 ]] || fail "$ns: $bad bad_auth/replay/unknown_index drops on a clean link"
done

log "SIGTERM b: exit 0 within 5 s, device removed, no error logged"
kill -TERM "$pid_b"
wait_until 5 not_running "$pid_b" || fail "meshfwd b still running 5 s after SIGTERM"
rc=0
wait "$pid_b" || rc=$?
[[ $rc -eq 0 ]] || fail "meshfwd b exited $rc after SIGTERM, want 0: $(tail -5 "$tmp/meshfwd-b.log")"
if n2 ip link show mfb0 >/dev/null 2>&1; then
    fail "mfb0 still exists in $ns2 after meshfwd b exited"
fi
if grep -E '\[(error|critical)\]|meshfwd: error' "$tmp/meshfwd-b.log"; then
    fail "meshfwd b logged errors (above)"
fi
kill -0 "$pid_a" 2>/dev/null || fail "meshfwd a died: $(tail -5 "$tmp/meshfwd-a.log")"

echo "PASS: meshfwd <-> meshfwd ($((SECONDS - start))s)"
