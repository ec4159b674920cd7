#!/bin/bash
# meshfwd-wg behind an SNAT router, kept reachable by persistent keepalive (issue 16; the NAT
# case of WireGuard's own netns.sh). The router's conntrack forgets idle UDP mappings after 2 s,
# so without keepalives the outside peer loses its way in; with them it keeps it.
#
#   ns1 ($ns1): u16c<pid> 10.16.2.1/24; veth 10.17.1.100/24, default via 10.17.1.1
#   ns0 ($ns0): router, 10.17.1.1/24 inside, 203.0.113.1/24 outside, SNAT (masquerade) outward
#   ns2 ($ns2): u16s<pid> 10.16.2.2/24; veth 203.0.113.100/24, knows only the router's address
#
# Checks: the outside peer learns the NAT's address and port from the inside peer's first
# packets (`wg show endpoints`); with persistent-keepalive 1 the outside peer still reaches the
# inside one after 4 s of silence (twice the mapping's lifetime); with keepalive off, after the
# same silence, it does not (so the keepalives, not luck, kept the mapping); `wg show
# persistent-keepalive` reports the interval.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wg nft ping
meshfwd_build "$1"
meshfwd_wg=$build/tools/meshfwd-wg
[[ -x $meshfwd_wg ]] || fail "$meshfwd_wg not built"
start=$SECONDS
umask 077

ns0="u16r$$"
ifc=u16c$$
ifs=u16s$$
netns_add "$ns0"
netns_add "$ns1"
netns_add "$ns2"
n0() { ip netns exec "$ns0" "$@"; }

log "router $ns0: SNAT from 10.17.1.0/24 to 203.0.113.1, UDP mappings idle out after 2 s"
ip link add vethc netns "$ns1" type veth peer name vethrc netns "$ns0"
ip link add veths netns "$ns2" type veth peer name vethrs netns "$ns0"
n0 ip addr add 10.17.1.1/24 dev vethrc
n0 ip addr add 203.0.113.1/24 dev vethrs
n1 ip addr add 10.17.1.100/24 dev vethc
n2 ip addr add 203.0.113.100/24 dev veths
for ns_link in "$ns0 vethrc" "$ns0 vethrs" "$ns1 vethc" "$ns2 veths"; do
    read -r ns link <<<"$ns_link"
    ip -n "$ns" link set "$link" up
done
n1 ip route add default via 10.17.1.1
n0 sysctl -qw net.ipv4.ip_forward=1
n0 nft -f - <<'EOF'
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.17.1.0/24 oifname "vethrs" masquerade
    }
}
EOF
# Loaded by the nat table above; per-namespace values.
n0 sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 net.netfilter.nf_conntrack_udp_timeout_stream=2

log "meshfwd-wg $ifc inside the NAT, $ifs outside"
for pair in "$ns1 $ifc" "$ns2 $ifs"; do
    read -r ns ifname <<<"$pair"
    netns_meshfwd_wg "$ns" "$ifname"
done
wg genkey >"$tmp/c.key"
wg genkey >"$tmp/s.key"
pub_c=$(wg pubkey <"$tmp/c.key")
pub_s=$(wg pubkey <"$tmp/s.key")
n1 wg set "$ifc" private-key "$tmp/c.key" listen-port 1 \
    peer "$pub_s" allowed-ips 10.16.2.2/32 endpoint 203.0.113.100:2
n2 wg set "$ifs" private-key "$tmp/s.key" listen-port 2 peer "$pub_c" allowed-ips 10.16.2.1/32
n1 ip addr add 10.16.2.1/24 dev "$ifc"
n2 ip addr add 10.16.2.2/24 dev "$ifs"
n1 ip link set "$ifc" up
n2 ip link set "$ifs" up

log "inside -> outside; the outside peer learns the NAT's address"
tunnel_ping "$ns1" 10.16.2.2
tunnel_ping "$ns2" 10.16.2.1
endpoint=$(n2 wg show "$ifs" endpoints | cut -f2)
[[ $endpoint == 203.0.113.1:* ]] || fail "outside peer's endpoint for the inside one: '$endpoint', want 203.0.113.1:PORT"
echo "    outside sees the inside peer at $endpoint"

log "keepalive off: after 4 s of silence the mapping is gone and the outside peer cannot reach in"
silent_then_ping() { # expect: ok|fail
    sleep 4
    if n2 ping -c 1 -W 2 10.16.2.1 >/dev/null 2>&1; then
        [[ $1 == ok ]] || fail "the outside peer reached in after 4 s of silence without keepalives (the NAT kept its mapping?)"
    else
        [[ $1 == fail ]] || fail "the outside peer could not reach in after 4 s of silence with persistent-keepalive 1"
    fi
}
silent_then_ping fail

log "persistent-keepalive 1: the mapping stays open through 4 s of silence"
n1 wg set "$ifc" peer "$pub_s" persistent-keepalive 1
[[ $(n1 wg show "$ifc" persistent-keepalive) == "$pub_s	1" ]] || fail "keepalive: $(n1 wg show "$ifc" persistent-keepalive)"
tunnel_ping "$ns1" 10.16.2.2  # reopens the mapping
silent_then_ping ok
silent_then_ping ok
endpoint_after=$(n2 wg show "$ifs" endpoints | cut -f2)
[[ $endpoint_after == 203.0.113.1:* ]] || fail "outside peer's endpoint after keepalives: '$endpoint_after'"
echo "    reached in twice after 4 s of silence, endpoint $endpoint_after"

echo "PASS: meshfwd-wg behind SNAT with persistent keepalive ($((SECONDS - start))s)"
