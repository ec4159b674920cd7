#!/bin/bash
# meshfwd-wg as wg-quick's userspace implementation, from a normal wg-quick config, against
# wireguard-go: the drop-in for `wireguard-go IFNAME` (issue 16).
#
#   ns1 ($ns1)                                 ns2 ($ns2)
#   wireguard-go u16g<pid> (set up with wg)    WG_QUICK_USERSPACE_IMPLEMENTATION=meshfwd-wg
#     10.16.0.1/24, fd16::1/64                   wg-quick up u16q<pid>.conf: 10.16.0.2/24, fd16::2/64
#     UDP 51820  ---- veth1 <-> veth2 ---->      ListenPort 51821, Endpoint 192.0.2.1:51820
#                 192.0.2.1/24  192.0.2.2/24
#
# Checks: wg-quick up returns with meshfwd-wg in the background serving its UAPI socket (mode
# 0600); pings IPv4 and IPv6; 200 MB over TCP with a matching sha256; `wg show` reports the
# handshake, the transfer and the endpoint; `ip -s link` counts the packets; wg-quick down
# removes the interface, the socket and the process.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wireguard-go wg wg-quick python3 ping
meshfwd_build "$1"
netns_python
meshfwd_wg=$build/tools/meshfwd-wg
[[ -x $meshfwd_wg ]] || fail "$meshfwd_wg not built"
# wg-quick tries the kernel module first and only falls back to the userspace implementation
# without it.
[[ ! -e /sys/module/wireguard ]] || netns_skip "the wireguard kernel module is loaded: wg-quick would not use meshfwd-wg"
start=$SECONDS
umask 077

goif=u16g$$
qif=u16q$$
uapi_sock=/var/run/wireguard/$qif.sock
netns_pair

wg genkey >"$tmp/go.key"
wg genkey >"$tmp/q.key"
pub_go=$(wg pubkey <"$tmp/go.key")
pub_q=$(wg pubkey <"$tmp/q.key")

# wg-quick down (or the test failing) deletes the interface, which ends meshfwd-wg; if it is
# still running at cleanup, stop it by its PID (recorded below).
qpid=""
stop_meshfwd_wg() {
    ip -n "$ns2" link del "$qif" 2>/dev/null
    [[ -z $qpid ]] || kill -TERM "$qpid" 2>/dev/null
    rm -f "$uapi_sock"
}
cleanup_hooks+=(stop_meshfwd_wg)

log "wireguard-go $goif in $ns1"
netns_wireguard_go "$ns1" "$goif"
n1 wg set "$goif" private-key "$tmp/go.key" listen-port 51820 peer "$pub_q" allowed-ips 10.16.0.2/32,fd16::2/128
n1 ip addr add 10.16.0.1/24 dev "$goif"
n1 ip -6 addr add fd16::1/64 dev "$goif"
n1 ip link set "$goif" mtu 1420 up

log "wg-quick up $qif in $ns2 with WG_QUICK_USERSPACE_IMPLEMENTATION=meshfwd-wg"
cat >"$tmp/$qif.conf" <<EOF
[Interface]
PrivateKey = $(cat "$tmp/q.key")
Address = 10.16.0.2/24, fd16::2/64
ListenPort = 51821

[Peer]
PublicKey = $pub_go
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.16.0.1/32, fd16::1/128
PersistentKeepalive = 25
EOF
n2 env WG_QUICK_USERSPACE_IMPLEMENTATION="$meshfwd_wg" MESHFWD_CORES=0 LOG_LEVEL=info \
    wg-quick up "$tmp/$qif.conf" >"$tmp/wg-quick-up.log" 2>&1 || { cat "$tmp/wg-quick-up.log" >&2; fail "wg-quick up failed"; }
sed 's/^/    /' "$tmp/wg-quick-up.log" | grep -v '^\s*$' | head -20
[[ -S $uapi_sock ]] || fail "no UAPI socket $uapi_sock after wg-quick up"
[[ $(stat -c %a "$uapi_sock") == 600 ]] || fail "$uapi_sock has mode $(stat -c %a "$uapi_sock"), want 600"
qpid=$(n2 ss -xlpn | grep -F "$uapi_sock " | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2) || true
[[ -n $qpid ]] && grep -q meshfwd-wg "/proc/$qpid/comm" 2>/dev/null ||
    fail "the process serving $uapi_sock is not meshfwd-wg (pid '$qpid')"
echo "    meshfwd-wg pid $qpid serves $uapi_sock"
[[ $(n2 ip -d link show "$qif") == *" tun "* ]] || fail "$qif is not a TUN device (meshfwd-wg's)"

log "ping over the tunnel"
tunnel_ping "$ns2" 10.16.0.1
tunnel_ping "$ns1" 10.16.0.2
tunnel_ping "$ns2" fd16::1
tunnel_ping "$ns1" fd16::2

log "200 MB over TCP, meshfwd-wg -> wireguard-go, checksummed"
head -c 200000000 /dev/urandom >"$tmp/blob"
tcp_transfer "$ns2" "$ns1" 10.16.0.1 "$tmp/blob"
rm -f "$tmp/blob"

log "wg show $qif"
wg_text=$(n2 wg show "$qif")
printf '%s\n' "$wg_text" | sed 's/^/    /'
read -r _ hs < <(n2 wg show "$qif" latest-handshakes)
[[ $hs -gt 0 ]] || fail "wg show: latest handshake is 0"
now=$(date +%s)
(( hs <= now && hs > now - 300 )) || fail "wg show: latest handshake $hs is not recent (now $now)"
read -r _ rx tx < <(n2 wg show "$qif" transfer)
(( tx >= 200000000 )) || fail "wg show: tx $tx bytes after sending 200 MB"
(( rx > 0 )) || fail "wg show: rx is 0"
[[ $(n2 wg show "$qif" endpoints) == "$pub_go	192.0.2.1:51820" ]] ||
    fail "wg show endpoints: '$(n2 wg show "$qif" endpoints)'"
[[ $(n2 wg show "$qif" listen-port) == 51821 ]] || fail "listen-port $(n2 wg show "$qif" listen-port), want 51821"
n2 wg show "$qif" dump >/dev/null || fail "wg show dump"
read -r _ go_rx _ < <(n1 wg show "$goif" transfer)
(( go_rx >= 200000000 )) || fail "wireguard-go received $go_rx bytes"
echo "    meshfwd-wg rx $rx tx $tx; wireguard-go rx $go_rx"

log "ip -s link counts our packets"
tx_packets=$(n2 ip -j -s link show "$qif" | "$py" -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])')
(( tx_packets > 1000 )) || fail "ip -s link: tx packets $tx_packets"
echo "    $qif tx packets $tx_packets"

log "wg-quick down"
n2 wg-quick down "$tmp/$qif.conf" >"$tmp/wg-quick-down.log" 2>&1 || { cat "$tmp/wg-quick-down.log" >&2; fail "wg-quick down failed"; }
wait_until 5 not_running "$qpid" || fail "meshfwd-wg still running 5 s after wg-quick down"
[[ ! -e $uapi_sock ]] || fail "$uapi_sock left behind"
! n2 ip link show "$qif" >/dev/null 2>&1 || fail "$qif still exists"
[[ $(n2 ip route show) != *10.16.0* ]] || fail "routes to 10.16.0.x left behind: $(n2 ip route show)"
qpid=""

echo "PASS: wg-quick with meshfwd-wg against wireguard-go ($((SECONDS - start))s)"
