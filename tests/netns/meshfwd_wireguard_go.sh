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
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
umask 077

# --- helpers ---------------------------------------------------------------------------------

# write_config FILE PEER_PUB [PEER_ENDPOINT]: node a with one plain WireGuard peer.
write_config() {
    { node_config a mfa0 "10.100.0.1/24, fd00:100::1/64"; peer_config "$2" "10.100.0.2/32, fd00:100::2/128" "${3:-}"; } >"$1"
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
    pj=$(peers_json "$ns1") || fail "meshctl peers --json"
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
    pj=$(peers_json "$ns1") || fail "meshctl peers --json"
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
