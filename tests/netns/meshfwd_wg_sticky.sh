#!/bin/bash
# Source-address stickiness (issue 16; WireGuard's own netns.sh checks it too): a node with two
# underlay addresses, contacted on its second one, answers from that one, and when that address
# is removed its replies fall over to the address that is left, without a new handshake being
# needed. IPv4 and IPv6 underlays.
#
#   ns1 ($ns1): u16a<pid> 10.18.2.1/24, fd00:18:2::1/64; veth 192.0.2.1/24 (primary) and
#               192.0.2.2/24, fd00:18::1/64 and fd00:18::2/64 (deprecated: preferred_lft 0, so
#               the route's own choice of source is always ::1)
#   ns2 ($ns2): u16b<pid> 10.18.2.2/24, fd00:18:2::2/64; veth 192.0.2.10/24, fd00:18::10/64;
#               its peer A has endpoint 192.0.2.2 (later [fd00:18::2])
#
# Without stickiness A would answer from the route's source (.1, ::1) and B's `wg show
# endpoints` would move there at once; with it, B keeps seeing the second address. After `ip
# addr del` of that address, A's sends from it fail (ENETUNREACH / EINVAL); A forgets it (logged)
# and sends from the route's source, and B moves there.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wg ping
meshfwd_build "$1"
meshfwd_wg=$build/tools/meshfwd-wg
[[ -x $meshfwd_wg ]] || fail "$meshfwd_wg not built"
start=$SECONDS
umask 077

ifa=u16a$$
ifb=u16b$$
netns_add "$ns1"
netns_add "$ns2"

log "underlay: A has 192.0.2.1 + .2 and fd00:18::1 + ::2 (deprecated); B has .10 and ::10"
ip link add vetha netns "$ns1" type veth peer name vethb netns "$ns2"
n1 ip addr add 192.0.2.1/24 dev vetha
n1 ip addr add 192.0.2.2/24 dev vetha
n1 ip addr add fd00:18::1/64 dev vetha nodad
n1 ip addr add fd00:18::2/64 dev vetha nodad preferred_lft 0
n2 ip addr add 192.0.2.10/24 dev vethb
n2 ip addr add fd00:18::10/64 dev vethb nodad
n1 ip link set vetha up
n2 ip link set vethb up
# The premise: the route's source toward B is the first address, not the second.
route_src() { n1 ip route get "$1" | sed -n 's/.* src \([^ ]*\).*/\1/p'; }
[[ $(route_src 192.0.2.10) == 192.0.2.1 ]] || fail "route source toward B is '$(route_src 192.0.2.10)', want 192.0.2.1"
[[ $(route_src fd00:18::10) == fd00:18::1 ]] || fail "route source toward B is '$(route_src fd00:18::10)', want fd00:18::1"

for pair in "$ns1 $ifa" "$ns2 $ifb"; do
    read -r ns ifname <<<"$pair"
    netns_meshfwd_wg "$ns" "$ifname"
done
wg genkey >"$tmp/a.key"
wg genkey >"$tmp/b.key"
pub_a=$(wg pubkey <"$tmp/a.key")
pub_b=$(wg pubkey <"$tmp/b.key")
n1 wg set "$ifa" private-key "$tmp/a.key" listen-port 1 peer "$pub_b" allowed-ips 10.18.2.2/32,fd00:18:2::2/128
n2 wg set "$ifb" private-key "$tmp/b.key" listen-port 2 \
    peer "$pub_a" allowed-ips 10.18.2.1/32,fd00:18:2::1/128 endpoint 192.0.2.2:1
n1 ip addr add 10.18.2.1/24 dev "$ifa"
n1 ip addr add fd00:18:2::1/64 dev "$ifa" nodad
n2 ip addr add 10.18.2.2/24 dev "$ifb"
n2 ip addr add fd00:18:2::2/64 dev "$ifb" nodad
n1 ip link set "$ifa" up
n2 ip link set "$ifb" up

b_sees() { n2 wg show "$ifb" endpoints | cut -f2; }
expect_b_sees() { # endpoint what
    local seen
    seen=$(b_sees)
    [[ $seen == "$1" ]] || { tail -20 "$tmp/wg-$ifa.log" >&2; fail "B's endpoint for A is '$seen' $2; want $1"; }
    echo "    B sees A at $seen"
}

log "IPv4: B contacts A on 192.0.2.2; A's handshake response and data come from .2"
tunnel_ping "$ns2" 10.18.2.1
tunnel_ping "$ns1" 10.18.2.2  # A-originated traffic too
expect_b_sees 192.0.2.2:1 "after pings both ways"
# Keepalive-driven and data traffic for a while: still .2.
n1 wg set "$ifa" peer "$pub_b" persistent-keepalive 1
sleep 2
expect_b_sees 192.0.2.2:1 "after 2 s of keepalives"

log "IPv4: 192.0.2.2 removed from A; A's replies fall over to 192.0.2.1"
n1 ip addr del 192.0.2.2/24 dev vetha
tunnel_ping "$ns1" 10.18.2.2
expect_b_sees 192.0.2.1:1 "after 192.0.2.2 was removed"
grep -q "local address ::ffff:192.0.2.2 is gone" "$tmp/wg-$ifa.log" ||
    { tail -20 "$tmp/wg-$ifa.log" >&2; fail "A did not log that 192.0.2.2 is gone"; }
tunnel_ping "$ns2" 10.18.2.1

log "IPv6: B moves to A's deprecated fd00:18::2; A answers from it"
n2 wg set "$ifb" peer "$pub_a" endpoint "[fd00:18::2]:1"
tunnel_ping "$ns2" fd00:18:2::1
tunnel_ping "$ns1" fd00:18:2::2
sleep 2  # keepalives: still ::2
expect_b_sees "[fd00:18::2]:1" "after pings both ways over IPv6"

log "IPv6: fd00:18::2 removed from A; A's replies fall over to fd00:18::1"
n1 ip addr del fd00:18::2/64 dev vetha
tunnel_ping "$ns1" fd00:18:2::2
expect_b_sees "[fd00:18::1]:1" "after fd00:18::2 was removed"
grep -q "local address fd00:18::2 is gone" "$tmp/wg-$ifa.log" ||
    { tail -20 "$tmp/wg-$ifa.log" >&2; fail "A did not log that fd00:18::2 is gone"; }
tunnel_ping "$ns2" fd00:18:2::1

echo "PASS: source-address stickiness over IPv4 and IPv6, falling over on removal ($((SECONDS - start))s)"
