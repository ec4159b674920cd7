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
# no io_uring io-wq threads (reads punted to blocking threads) in either process; both log the
# receive buffers asked for: provided buffer rings (kernel 5.19+), or with MESHFWD_NO_PBUF=1 in
# the environment (the `meshfwd_pair_copy` test) the fallback, fixed buffers and a copy; with
# MESHFWD_PBUF_BUFFERS=1 (`meshfwd_pair_starved`: one buffer per ring) reads keep finding the
# ring empty, which is counted (no_rx_buffer), and the tunnel still works after the transfer;
# SIGTERM makes b exit 0 within 5 s, remove mfb0, and log no error.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082

# --- setup -----------------------------------------------------------------------------------

meshfwd_key a
pub_a=$pubkey
meshfwd_key b
pub_b=$pubkey
{
    node_config a mfa0 "10.100.0.1/24, fd00:100::1/64"
    peer_config "$pub_b" "10.100.0.2/32, fd00:100::2/128" 192.0.2.2:51820 true
} >"$tmp/a.yaml"
{
    node_config b mfb0 "10.100.0.2/24, fd00:100::2/64"
    peer_config "$pub_a" "10.100.0.1/32, fd00:100::1/128" 192.0.2.1:51820 true
} >"$tmp/b.yaml"

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

log "ping both ways after the transfer"
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns2" fd00:100::1

log "meshctl peers on a (text)"
text=$(n1 "$meshctl" peers --api "$api") || fail "meshctl peers failed"
printf '%s\n' "$text" | sed 's/^/    /'
grep -qF "$pub_b" <<<"$text" || fail "meshctl peers: b's public key not listed"
grep -q "latest handshake:" <<<"$text" || fail "meshctl peers: no 'latest handshake' line"
line=$(grep -m1 "transfer:" <<<"$text") || fail "meshctl peers: no 'transfer' line"
[[ $line =~ transfer:\ (.+)\ received,\ (.+)\ sent ]] || fail "meshctl peers: odd transfer line: $line"
[[ ${BASH_REMATCH[1]} != "0 B" && ${BASH_REMATCH[2]} != "0 B" ]] || fail "meshctl peers: zero transfer: $line"

log "counters (JSON)"
starved=0
min=$((200 * 1024 * 1024))
tx_a=$(peer_field "$ns1" "$pub_b" tx_bytes)
rx_b=$(peer_field "$ns2" "$pub_a" rx_bytes)
echo "    a sent $tx_a bytes to b; b received $rx_b bytes from a"
[[ $tx_a -gt $min ]] || fail "a's tx_bytes to b is $tx_a, want > $min (200 MiB were sent)"
[[ $rx_b -gt $min ]] || fail "b's rx_bytes from a is $rx_b, want > $min (200 MiB were received)"
for ns in "$ns1" "$ns2"; do
    st=$(status_json "$ns") || fail "status --json in $ns"
    echo "    $ns drops: $(jget "$st" 'd["totals"]["drops"]')"
    bad=$(jget "$st" 'sum(d["totals"]["drops"].get(k, 0) for k in ("bad_auth", "replay", "unknown_index"))')
    [[ $bad -eq 0 ]] || fail "$ns: $bad bad_auth/replay/unknown_index drops on a clean link"
    starved=$((starved + $(jget "$st" 'd["totals"]["drops"].get("no_rx_buffer", 0)')))
done
if [[ ${MESHFWD_PBUF_BUFFERS:-64} -le 2 && -z ${MESHFWD_NO_PBUF:-} ]]; then
    [[ $starved -gt 0 ]] || fail "rings of ${MESHFWD_PBUF_BUFFERS} buffer(s) never ran empty (no_rx_buffer 0)"
fi

# Each worker keeps one read waiting per file. Several would all wake for each packet, and
# io_uring hands the losers to io-wq threads ("iou-wrk-*") blocked in read: a dozen thread
# wake-ups per packet from then on. After the pings and 200 MiB there must be none.
log "no io_uring io-wq threads (reads stay in the workers)"
for pid in "$pid_a" "$pid_b"; do
    iowq=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^iou-wrk' || true)
    echo "    meshfwd $pid: $iowq io-wq threads"
    [[ $iowq -eq 0 ]] || fail "meshfwd $pid has $iowq io-wq (iou-wrk) threads: reads are being punted to blocking threads"
done

# Kernels before 5.19 have no provided buffer rings; there the fallback is right too.
if [[ -n ${MESHFWD_NO_PBUF:-} && ${MESHFWD_NO_PBUF} != 0 ]]; then
    want="fixed buffers"
elif printf '%s\n' 5.19 "$(uname -r | cut -d- -f1)" | sort -V -C; then
    want="provided buffer rings"
else
    want=""
fi
log "receive buffers: want '${want:-either}' (MESHFWD_NO_PBUF=${MESHFWD_NO_PBUF:-})"
for node in a b; do
    line=$(grep -m1 "receive buffers:" "$tmp/meshfwd-$node.log") || fail "meshfwd $node logged no 'receive buffers:' line"
    echo "    $node: ${line#*receive buffers: }"
    [[ $line == *"receive buffers: $want"* ]] || fail "meshfwd $node: receive buffers are not '$want'"
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
