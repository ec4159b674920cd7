#!/bin/bash
# Two meshfwd-wg interfaces configured only with `wg set`/`wg setconf`, in the layout of
# WireGuard's own netns.sh: created in ns0, moved to ns1 and ns2; their UDP sockets stay in ns0,
# whose loopback is the underlay (issue 16).
#
#   ns0 ($ns0): meshfwd-wg a (port 10000) and b (port 20000), underlay 127.0.0.1 / ::1
#   ns1 ($ns1): u16a<pid> 10.16.1.1/24 fd16:1::1/64    ns2 ($ns2): u16b<pid> 10.16.1.2/24 fd16:1::2/64
#
# Checks: pings and iperf3 (TCP) IPv4 and IPv6 inside over an IPv4 and an IPv6 underlay; roaming when a's listen
# port changes and when its underlay address changes (b's `wg show endpoints`); the crypto-RP
# (a more specific allowed IP on another peer takes the traffic, and gives it back); `wg setconf`
# with 130,000 allowed IPs read back whole, without disturbing the unchanged peer's session; `wg
# show` of a missing interface fails; bad set requests get an errno; the MTU raised to 34000 at
# run time with large pings and TCP still flowing; link down stops traffic and up resumes it;
# SIGTERM removes the socket and the device.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wg python3 ping iperf3 ss
meshfwd_build "$1"
netns_python
meshfwd_wg=$build/tools/meshfwd-wg
[[ -x $meshfwd_wg ]] || fail "$meshfwd_wg not built"
start=$SECONDS
umask 077

ns0="u16n0$$"
ifa=u16a$$
ifb=u16b$$
netns_add "$ns0"
netns_add "$ns1"
netns_add "$ns2"
n0() { ip netns exec "$ns0" "$@"; }

log "meshfwd-wg $ifa and $ifb created in $ns0, moved to $ns1 and $ns2"
for ifname in "$ifa" "$ifb"; do
    netns_meshfwd_wg "$ns0" "$ifname"
done
pid_a=${_netns_pids[0]}
pid_b=${_netns_pids[1]}
[[ $(n0 ip link show "$ifa") == *"state DOWN"* ]] || fail "$ifa is not created down"
[[ -z $(n0 ip addr show dev "$ifa" | grep inet) ]] || fail "$ifa has an address before anyone gave it one"
n0 ip link set "$ifa" netns "$ns1"
n0 ip link set "$ifb" netns "$ns2"

wg genkey >"$tmp/a.key"
wg genkey >"$tmp/b.key"
pub_a=$(wg pubkey <"$tmp/a.key")
pub_b=$(wg pubkey <"$tmp/b.key")
n1 wg set "$ifa" private-key "$tmp/a.key" listen-port 10000 \
    peer "$pub_b" allowed-ips 10.16.1.0/24,fd16:1::/64 endpoint 127.0.0.1:20000
n2 wg set "$ifb" private-key "$tmp/b.key" listen-port 20000 \
    peer "$pub_a" allowed-ips 10.16.1.1/32,fd16:1::1/128 endpoint 127.0.0.1:10000
n1 ip addr add 10.16.1.1/24 dev "$ifa"
n1 ip addr add fd16:1::1/64 dev "$ifa" nodad
n2 ip addr add 10.16.1.2/24 dev "$ifb"
n2 ip addr add fd16:1::2/64 dev "$ifb" nodad
n1 ip link set "$ifa" up
n2 ip link set "$ifb" up
[[ $(n1 wg show "$ifa" listen-port) == 10000 ]] || fail "listen-port of $ifa: $(n1 wg show "$ifa" listen-port)"
[[ $(n1 wg show "$ifa" public-key) == "$pub_a" ]] || fail "public key of $ifa"

log "ping v4 and v6 inside, IPv4 underlay"
tunnel_ping "$ns1" 10.16.1.2
tunnel_ping "$ns2" fd16:1::1
nsec=$(printf 'get=1\n\n' | n1 "$py" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
data = b""
while not data.endswith(b"\n\n"):
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
print([l.split("=")[1] for l in data.decode().splitlines() if l.startswith("last_handshake_time_nsec=")][0])' "/var/run/wireguard/$ifa.sock")
[[ $nsec =~ ^[0-9]+$ && $nsec -gt 0 && $nsec -lt 1000000000 ]] || fail "last_handshake_time_nsec after a handshake: '$nsec'"

# iperf3 TCP a -> b for 2 s to `dst` (b's inside address); fails unless bytes arrive.
iperf_listening() { [[ -n $(n2 ss -Hltn 'sport = :5201') ]]; }
iperf_inside() {
    local dst=$1 name=$2 out mbit
    netns_spawn "$ns2" "iperf3-$name" iperf3 -s -1 -B "$dst"
    wait_until 5 iperf_listening || fail "iperf3 server on $dst did not listen: $(cat "$tmp/iperf3-$name.log")"
    out=$(n1 timeout 30 iperf3 -c "$dst" -t 2 --connect-timeout 3000 -J 2>"$tmp/iperf3-$name.err") ||
        fail "iperf3 to $dst ($name) failed: $(tail -5 <<<"$out") $(tail -3 "$tmp/iperf3-$name.err")"
    mbit=$(jget "$out" "int(d['end']['sum_received']['bits_per_second'] / 1e6)")
    echo "    iperf3 $name to $dst: $mbit Mbit/s"
    (( mbit > 0 )) || fail "iperf3 $name to $dst: nothing received"
    wait_until 5 not_running "$spawned_pid" || true
}
iperf_inside 10.16.1.2 v4-in-v4
iperf_inside fd16:1::2 v6-in-v4

log "IPv6 underlay"
n1 wg set "$ifa" peer "$pub_b" endpoint "[::1]:20000"
n2 wg set "$ifb" peer "$pub_a" endpoint "[::1]:10000"
tunnel_ping "$ns1" fd16:1::2
tunnel_ping "$ns2" 10.16.1.1
iperf_inside 10.16.1.2 v4-in-v6
iperf_inside fd16:1::2 v6-in-v6
[[ $(n2 wg show "$ifb" endpoints) == "$pub_a	[::1]:10000" ]] || fail "b's endpoint for a: $(n2 wg show "$ifb" endpoints)"

log "roaming: a's listen port changes to 10001; b learns it"
n1 wg set "$ifa" listen-port 10001
tunnel_ping "$ns1" 10.16.1.2
[[ $(n2 wg show "$ifb" endpoints) == "$pub_a	[::1]:10001" ]] || fail "b's endpoint for a after the port change: $(n2 wg show "$ifb" endpoints)"

log "roaming: a's underlay address changes (::1 -> 127.0.0.1); b learns it from a's keepalives"
# Only a sends (keepalives get no answer), so b's replies cannot race the change back to ::1.
n1 wg set "$ifa" peer "$pub_b" endpoint 127.0.0.1:20000 persistent-keepalive 1
b_endpoint() { [[ $(n2 wg show "$ifb" endpoints) == "$pub_a	127.0.0.1:10001" ]]; }
wait_until 5 b_endpoint || fail "b's endpoint for a after the address change: $(n2 wg show "$ifb" endpoints)"
n1 wg set "$ifa" peer "$pub_b" persistent-keepalive 0
tunnel_ping "$ns1" 10.16.1.2
b_endpoint || fail "b's endpoint for a after pings: $(n2 wg show "$ifb" endpoints)"
[[ $(n1 wg show "$ifa" persistent-keepalive) == "$pub_b	off" ]] || fail "keepalive: $(n1 wg show "$ifa" persistent-keepalive)"

log "crypto-RP: a more specific allowed IP on another peer takes the traffic"
wg genkey >"$tmp/x.key"
pub_x=$(wg pubkey <"$tmp/x.key")
n1 wg set "$ifa" peer "$pub_x" allowed-ips 10.16.1.2/32
! n1 ping -c 2 -i 0.2 -W 1 10.16.1.2 >/dev/null 2>&1 || fail "10.16.1.2 still answers with its /32 on peer x (no endpoint)"
tunnel_ping "$ns1" fd16:1::2  # the rest of b's allowed IPs still go to b
n1 wg set "$ifa" peer "$pub_x" remove
tunnel_ping "$ns1" 10.16.1.2

log "wg setconf with 130,000 allowed IPs, read back whole; b's session undisturbed"
read -r _ hs_before < <(n1 wg show "$ifa" latest-handshakes | grep "$pub_b")
wg genkey >"$tmp/y.key"
pub_y=$(wg pubkey <"$tmp/y.key")
{
    n1 wg showconf "$ifa"
    echo
    echo "[Peer]"
    echo "PublicKey = $pub_y"
    "$py" -c '
for i in range(130000):
    print("AllowedIPs = 10.%d.%d.%d/32" % (64 + (i >> 16), (i >> 8) & 255, i & 255))'
} >"$tmp/big.conf"
t0=$(date +%s%N)
n1 wg setconf "$ifa" "$tmp/big.conf" || fail "wg setconf with 130,000 allowed IPs"
t1=$(date +%s%N)
n1 wg show "$ifa" allowed-ips >"$tmp/big.out" || fail "wg show allowed-ips"
t2=$(date +%s%N)
count=$(grep "^$pub_y" "$tmp/big.out" | tr '\t ' '\n\n' | grep -c '^10\.' || true)
[[ $count == 130000 ]] || fail "read back $count allowed IPs of peer y, want 130000"
grep -q "^$pub_y.*10\.65\.251\.207/32" "$tmp/big.out" || fail "the last allowed IP of y is missing"
echo "    setconf $(( (t1 - t0) / 1000000 )) ms, get $(( (t2 - t1) / 1000000 )) ms, 130000 allowed IPs read back"
read -r _ hs_after < <(n1 wg show "$ifa" latest-handshakes | grep "$pub_b")
[[ $hs_after == "$hs_before" ]] || fail "b's handshake changed ($hs_before -> $hs_after): setconf disturbed its session"
[[ $(n1 wg show "$ifa" listen-port) == 10001 ]] || fail "listen-port after setconf: $(n1 wg show "$ifa" listen-port)"
tunnel_ping "$ns1" 10.16.1.2
n1 wg set "$ifa" peer "$pub_y" remove

log "errors: missing interface, bad values"
! n1 wg show "u16zz$$" >/dev/null 2>&1 || fail "wg show of a missing interface succeeded"
! n1 wg set "$ifa" listen-port 20000 2>/dev/null || fail "listen-port 20000 (b's, in use) was accepted"
[[ $(n1 wg show "$ifa" listen-port) == 10001 ]] || fail "a refused listen-port change still moved the port"
reply=$(printf 'set=1\nlisten_port=99999\n\n' | n1 "$py" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.recv(100).decode().strip())' "/var/run/wireguard/$ifa.sock")
[[ $reply == "errno=22" ]] || fail "set listen_port=99999: reply '$reply', want errno=22"
tunnel_ping "$ns1" 10.16.1.2

log "MTU raised to 34000 at run time: large pings and TCP still flow"
n1 ip link set "$ifa" mtu 34000
n2 ip link set "$ifb" mtu 34000
sleep 0.5  # the workers restart on the control thread's next tick (100 ms) after the change
for ((i = 0; i < 20; i++)); do
    n1 ping -c 1 -W 1 -s 33000 -M do 10.16.1.2 >/dev/null 2>&1 && break
done
out=$(n1 ping -c 3 -i 0.2 -W 2 -s 33000 -M do 10.16.1.2 2>&1) || true
grep -q " 3 received" <<<"$out" || fail "33000-byte pings at MTU 34000: $(tail -2 <<<"$out")"
echo "    33000-byte pings: $(grep -o '[0-9]* received' <<<"$out")"
head -c 20000000 /dev/urandom >"$tmp/blob"
tcp_transfer "$ns1" "$ns2" 10.16.1.2 "$tmp/blob"

log "link down stops traffic, up resumes it"
n2 ip link set "$ifb" down
! n1 ping -c 2 -i 0.2 -W 1 10.16.1.2 >/dev/null 2>&1 || fail "10.16.1.2 answers with its link down"
n2 ip link set "$ifb" up
n2 ip addr replace 10.16.1.2/24 dev "$ifb"  # IPv4 addresses survive down; idempotent either way
tunnel_ping "$ns1" 10.16.1.2
rx_packets=$(n2 ip -j -s link show "$ifb" | "$py" -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
(( rx_packets > 100 )) || fail "ip -s link: rx packets $rx_packets on $ifb"

log "SIGTERM: exit 0, socket and device removed"
kill -TERM "$pid_b"
wait_until 5 not_running "$pid_b" || fail "meshfwd-wg b still running 5 s after SIGTERM"
rc=0
wait "$pid_b" || rc=$?
[[ $rc == 0 ]] || fail "meshfwd-wg b exited $rc: $(tail -5 "$tmp/wg-$ifb.log")"
[[ ! -e /var/run/wireguard/$ifb.sock ]] || fail "b's socket left behind"
! n2 ip link show "$ifb" >/dev/null 2>&1 || fail "$ifb still exists"
log "ip link del: meshfwd-wg a exits"
n1 ip link del "$ifa"
wait_until 5 not_running "$pid_a" || fail "meshfwd-wg a still running 5 s after its device was deleted"
[[ ! -e /var/run/wireguard/$ifa.sock ]] || fail "a's socket left behind"

echo "PASS: meshfwd-wg configured with wg set across namespaces ($((SECONDS - start))s)"
