#!/bin/bash
# Two meshfwd nodes with a jumbo MTU (9000) on the tunnel over a 9100-byte underlay.
#
#   ns1 ($ns1)                                    ns2 ($ns2)
#   meshfwd a --cores 0                           meshfwd b --cores 1
#     mfa0 10.100.0.1/24, MTU 9000                  mfb0 10.100.0.2/24, MTU 9000
#     UDP 51820  ------ veth1 <-> veth2 ------->    UDP 51820
#                  192.0.2.1/24   192.0.2.2/24
#                  MTU 9100 (9000 + 32 WireGuard + 28 IPv4/UDP fits)
#
# Checks: both nodes start with mtu 9000 and their devices have it; the very first packet, an
# 8000-byte ping sent before any session exists, is staged whole while the handshake runs and is
# answered (it used to be dropped past 1920 bytes); `ping -M do -s 8972` (9000-byte packets, no
# fragmentation anywhere) gets every reply both ways, and one byte more is refused by the
# device's MTU; a 64 MiB TCP transfer a -> b arrives with the same sha256; the underlay carried
# datagrams larger than 1500 bytes; no node counted too_big, no_packet, staged_ring_full or any
# authentication drop. With MESHFWD_NO_PBUF=1 (`meshfwd_jumbo_copy`) every packet is copied into
# the pool, whose buffers are then sized from the MTU.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
meshfwd_build "$1"
netns_python
api=127.0.0.1:7082

# --- setup -----------------------------------------------------------------------------------

meshfwd_pair_configs
sed -i 's/mtu: 1420/mtu: 9000/' "$tmp/a.yaml" "$tmp/b.yaml"
grep -q "mtu: 9000" "$tmp/a.yaml" || fail "node_config no longer writes mtu: 1420"

netns_pair
ip -n "$ns1" link set veth1 mtu 9100
ip -n "$ns2" link set veth2 mtu 9100
wait_until 5 n1 ping -c1 -W1 -M do -s 9000 192.0.2.2 || fail "underlay veth does not carry 9028-byte packets"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"

# --- checks ----------------------------------------------------------------------------------

for dev in "$ns1 mfa0" "$ns2 mfb0"; do
    read -r ns name <<<"$dev"
    ip -n "$ns" link show "$name" | grep -q " mtu 9000 " || fail "$name: $(ip -n "$ns" link show "$name")"
done
[[ $(jget "$(peers_json "$ns1")" 'd["peers"][0]["handshakes"]') == 0 ]] || fail "a has a session before any traffic"

log "first packet before any session: one 8000-byte ping a -> b (staged during the handshake)"
n1 ping -c 1 -W 5 -M do -s 7972 10.100.0.2 >"$tmp/first.log" 2>&1 || fail "first 8000-byte ping: $(cat "$tmp/first.log")"
echo "    $(grep -o '[0-9]* packets transmitted.*loss' "$tmp/first.log")"

log "9000-byte packets, don't fragment, both ways"
for pair in "$ns1 10.100.0.2" "$ns2 10.100.0.1"; do
    read -r ns addr <<<"$pair"
    out=$(ip netns exec "$ns" ping -c 5 -i 0.2 -W 2 -M do -s 8972 "$addr" 2>&1) || true
    grep -q " 5 received" <<<"$out" || fail "ping -M do -s 8972 $addr from $ns: $(tail -2 <<<"$out")"
    echo "    $ns -> $addr: $(grep -o '[0-9]* packets transmitted.*loss' <<<"$out")"
done
if n1 ping -c 1 -W 1 -M do -s 8973 10.100.0.2 >/dev/null 2>&1; then
    fail "a 9001-byte packet went through a 9000-byte MTU"
fi

log "64 MiB over TCP a -> b, checksummed"
head -c $((64 << 20)) /dev/urandom >"$tmp/payload"
tcp_transfer "$ns1" "$ns2" 10.100.0.2 "$tmp/payload"

# The tunnel's messages were jumbo datagrams on the underlay: more bytes than 1500 per packet.
st_a=$(status_json "$ns1")
st_b=$(status_json "$ns2")
per_packet=$(jget "$st_a" 'd["totals"]["tx_bytes"] // max(1, d["totals"]["tx_packets"])')
echo "    a sent $(jget "$st_a" 'd["totals"]["tx_packets"]') messages, $per_packet bytes each on average"
((per_packet > 1500)) || fail "a's messages average $per_packet bytes: no jumbo datagrams"

for ns in "$ns1" "$ns2"; do
    drops=$(drops_json "$ns")
    echo "    $ns drops: $drops"
    for reason in too_big no_packet staged_ring_full no_session_queue_full bad_auth replay unknown_index; do
        [[ $(drop_count "$drops" "$reason") -eq 0 ]] || fail "$ns counted $reason drops"
    done
done
log "OK"
