#!/bin/bash
# meshfwd against wireguard-go: our data plane interoperates with a WireGuard we did not write,
# as initiator and as responder.
#
#   ns1 ($ns1)                                    ns2 ($ns2)
#   meshfwd a --cores 0                           wireguard-go wga<pid> / wgb<pid> (set up with wg)
#     mfa0 10.100.0.1/24, fd00:100::1/64            10.100.0.2/24, fd00:100::2/64
#     UDP 51820  ------ veth1 <-> veth2 ------->    UDP 51820
#                  192.0.2.1/24   192.0.2.2/24
#
# Round a: our peer entry has wireguard-go's endpoint, wireguard-go's has none; ns1 pings first,
#          so meshfwd initiates.
# Round b: both restarted; wireguard-go's peer entry has our endpoint, ours has none; ns2 pings
#          first, so wireguard-go initiates and meshfwd learns the endpoint.
# Each round: ping IPv4 and IPv6 both ways; 50 MiB over TCP each way with matching sha256;
# `wg show` reports a handshake and traffic both ways; meshctl's per-peer rx/tx bytes agree with
# wg's tx/rx: within 10% over 80 slow pings (nothing lost), and after the bulk transfer no receiver
# counts more than its sender sent (there the veth's UDP receive buffers do drop packets).
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wireguard-go wg python3 ping
build=$(realpath "$1")
meshctl=$build/tools/meshctl
[[ -x $build/tools/meshfwd && -x $meshctl ]] || fail "meshfwd/meshctl not built in $build"
start=$SECONDS
api=127.0.0.1:7082
umask 077

# --- helpers (kept in this file: each netns test stands alone) --------------------------------

# write_config FILE PEER_PUB [PEER_ENDPOINT]: node a with one plain WireGuard peer.
write_config() {
    {
        cat <<EOF
node:
  name: a
  private_key_file: a.key
  listen_port: 51820
  address: [10.100.0.1/24, fd00:100::1/64]
mesh:
  device: {type: tun, name: mfa0, mtu: 1420}
peers:
  - public_key: "$2"
    allowed_ips: [10.100.0.2/32, fd00:100::2/128]
EOF
        [[ -z ${3:-} ]] || echo "    endpoint: $3"
        cat <<EOF
dataplane: {poll: adaptive, batch: 64, crypto: auto}
api: {listen: $api}
EOF
    } >"$1"
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

# within_10pct A B: true when A and B differ by at most 10% of the larger.
within_10pct() { (( 10 * ($1 > $2 ? $1 - $2 : $2 - $1) <= ($1 > $2 ? $1 : $2) )); }

# start_wggo IFNAME [OUR_ENDPOINT]: wireguard-go in ns2 with peer a; sets $wg_pid.
start_wggo() {
    local ifname=$1 ep=${2:-}
    netns_wireguard_go "$ns2" "$ifname"
    wg_pid=$spawned_pid
    local peer_args=(peer "$pub_a" allowed-ips "10.100.0.1/32,fd00:100::1/128")
    [[ -z $ep ]] || peer_args+=(endpoint "$ep")
    n2 wg set "$ifname" private-key "$tmp/wggo.key" listen-port 51820 "${peer_args[@]}"
    n2 ip addr add 10.100.0.2/24 dev "$ifname"
    n2 ip -6 addr add fd00:100::2/64 dev "$ifname"
    n2 ip link set "$ifname" mtu 1420 up
}

# stop_all: SIGTERM meshfwd a (must exit 0 within 5 s and remove mfa0) and wireguard-go.
stop_all() {
    local rc=0
    kill -TERM "$pid_a" "$wg_pid"
    wait_until 5 not_running "$pid_a" || fail "meshfwd a still running 5 s after SIGTERM"
    wait "$pid_a" || rc=$?
    [[ $rc -eq 0 ]] || fail "meshfwd a exited $rc after SIGTERM: $(tail -5 "$log_a")"
    if n1 ip link show mfa0 >/dev/null 2>&1; then
        fail "mfa0 still exists after meshfwd a exited"
    fi
    wait_until 5 not_running "$wg_pid" || fail "wireguard-go still running 5 s after SIGTERM"
    wait "$wg_pid" 2>/dev/null || true
}

# counters WGIF: sets our_rx/our_tx (meshctl, peer wireguard-go) and wg_rx/wg_tx (wg show, peer a).
counters() {
    local pj _ sel="[p for p in d['peers'] if p['public_key'] == '$pub_wg'][0]"
    pj=$(n1 "$meshctl" peers --api "$api" --json) || fail "meshctl peers --json"
    our_rx=$(jget "$pj" "${sel}['rx_bytes']")
    our_tx=$(jget "$pj" "${sel}['tx_bytes']")
    read -r _ wg_rx wg_tx < <(n2 wg show "$1" transfer)
}
udp_rcvbuf_errors() { ip netns exec "$1" nstat -asz UdpRcvbufErrors | awk '/UdpRcvbufErrors/ { print $2 }'; }

# round NAME WGIF FIRST_NS: pings (FIRST_NS first, so its side initiates), transfers, counters.
round() {
    local name=$1 wgif=$2 first=$3
    log "round $name: ping, $first first"
    if [[ $first == "$ns1" ]]; then
        tunnel_ping "$ns1" 10.100.0.2
        tunnel_ping "$ns2" 10.100.0.1
    else
        tunnel_ping "$ns2" 10.100.0.1
        tunnel_ping "$ns1" 10.100.0.2
    fi
    tunnel_ping "$ns1" fd00:100::2
    tunnel_ping "$ns2" fd00:100::1

    log "round $name: 50 MiB over TCP each way, checksummed"
    tcp_transfer "$ns1" "$ns2" 10.100.0.2 "$tmp/blob"
    tcp_transfer "$ns2" "$ns1" fd00:100::1 "$tmp/blob"

    log "round $name: wg show $wgif"
    sleep 0.5 # let the last ACKs and the FIN exchange settle before reading counters
    local wg_text _ hs pj sel="[p for p in d['peers'] if p['public_key'] == '$pub_wg'][0]"
    wg_text=$(n2 wg show "$wgif")
    printf '%s\n' "$wg_text" | sed 's/^/    /'
    grep -q "latest handshake:" <<<"$wg_text" || fail "wg show: no latest handshake"
    read -r _ hs < <(n2 wg show "$wgif" latest-handshakes)
    [[ $hs -gt 0 ]] || fail "wg show: latest handshake is 0"
    counters "$wgif"
    [[ $wg_rx -gt 0 && $wg_tx -gt 0 ]] || fail "wg show: transfer rx=$wg_rx tx=$wg_tx, want both non-zero"

    log "round $name: meshctl peers on a"
    n1 "$meshctl" peers --api "$api" | sed 's/^/    /'
    pj=$(n1 "$meshctl" peers --api "$api" --json) || fail "meshctl peers --json"
    [[ $(jget "$pj" "${sel}['session']") == established ]] || fail "session on a is not 'established'"
    [[ $(jget "$pj" "${sel}['latest_handshake_unix']") -gt 0 ]] || fail "a: latest_handshake_unix is 0"
    [[ $(jget "$pj" "${sel}['endpoint']") == 192.0.2.2:51820 ]] ||
        fail "a: peer endpoint $(jget "$pj" "${sel}['endpoint']"), want 192.0.2.2:51820"

    # Totals after a bulk transfer differ by what the underlay lost: at full speed the receiving
    # UDP socket overflows (wireguard-go to wireguard-go loses ~12% here too), so a receiver
    # may count less than its sender sent, never more.
    echo "    totals: a rx $our_rx tx $our_tx; wireguard-go rx $wg_rx tx $wg_tx;" \
        "UDP receive-buffer drops: ns1 $(udp_rcvbuf_errors "$ns1"), ns2 $(udp_rcvbuf_errors "$ns2")"
    (( wg_rx <= our_tx + our_tx / 100 )) || fail "wireguard-go received $wg_rx bytes, more than the $our_tx a sent"
    (( our_rx <= wg_tx + wg_tx / 100 )) || fail "a received $our_rx bytes, more than the $wg_tx wireguard-go sent"
    (( 2 * wg_rx > our_tx && 2 * our_rx > wg_tx )) || fail "more than half of the traffic lost on a veth?"

    # The like-for-like check: over a slow exchange nothing is lost, so each side's count of the
    # other direction must agree (both count WireGuard message bytes).
    local rx0=$our_rx tx0=$our_tx wrx0=$wg_rx wtx0=$wg_tx
    n1 ping -q -c 40 -i 0.02 -s 1200 -W 2 10.100.0.2 >/dev/null || fail "slow ping a -> wireguard-go failed"
    n2 ping -q -c 40 -i 0.02 -s 700 -W 2 fd00:100::1 >/dev/null || fail "slow ping wireguard-go -> a failed"
    sleep 0.2
    counters "$wgif"
    local d_our_rx=$((our_rx - rx0)) d_our_tx=$((our_tx - tx0)) d_wg_rx=$((wg_rx - wrx0)) d_wg_tx=$((wg_tx - wtx0))
    echo "    during 80 slow pings: a rx +$d_our_rx tx +$d_our_tx; wireguard-go rx +$d_wg_rx tx +$d_wg_tx"
    [[ $d_our_tx -gt 0 && $d_our_rx -gt 0 ]] || fail "a's counters did not move during the slow pings"
    within_10pct "$d_our_tx" "$d_wg_rx" || fail "a sent +$d_our_tx bytes but wireguard-go received +$d_wg_rx (> 10% apart)"
    within_10pct "$d_our_rx" "$d_wg_tx" || fail "a received +$d_our_rx bytes but wireguard-go sent +$d_wg_tx (> 10% apart)"
}

# --- setup -----------------------------------------------------------------------------------

meshfwd_key a
pub_a=$pubkey
wg genkey >"$tmp/wggo.key"
pub_wg=$(wg pubkey <"$tmp/wggo.key")
head -c 50M /dev/urandom >"$tmp/blob"
netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

# --- round a: meshfwd initiates --------------------------------------------------------------

write_config "$tmp/a.yaml" "$pub_wg" 192.0.2.2:51820
start_wggo "wga$$"
netns_meshfwd "$ns1" a1 "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
log_a=$tmp/meshfwd-a1.log
round a "wga$$" "$ns1"
stop_all

# --- round b: wireguard-go initiates ---------------------------------------------------------

write_config "$tmp/a.yaml" "$pub_wg"
start_wggo "wgb$$" 192.0.2.1:51820
netns_meshfwd "$ns1" a2 "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
log_a=$tmp/meshfwd-a2.log
round b "wgb$$" "$ns2"

if grep -E '\[(error|critical)\]|meshfwd: error' "$tmp/meshfwd-a1.log" "$tmp/meshfwd-a2.log"; then
    fail "meshfwd a logged errors (above)"
fi
kill -0 "$wg_pid" 2>/dev/null || fail "wireguard-go died: $(tail -5 "$tmp/wireguard-go-wgb$$.log")"
echo "PASS: meshfwd <-> wireguard-go, both as initiator ($((SECONDS - start))s)"
