#!/bin/bash
# meshctl ping against wireguard-go: proof that our WireGuard talks to one we did not write.
#
#   ns1 ($ns1)                                   ns2 ($ns2)
#   meshctl ping                                 wireguard-go on wgt<pid> (kernel IP stack answers)
#     tunnel 10.0.0.1 / fd00::1                    tunnel 10.0.0.2/24 / fd00::2/64
#     UDP from any port  ---- veth1 <-> veth2 ---> UDP 51820
#     (41820 in the IPv6 run)
#                       192.0.2.1/24   192.0.2.2/24
#
# Checks: IPv4 and IPv6 echo through the tunnel (3 replies each); wg show reports a handshake
# and traffic; PSK on both sides; a wrong --peer-key and an unlisted public key both fail
# within --timeout with a clear message. Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wireguard-go wg
build=$(realpath "$1")
meshctl=$build/tools/meshctl
[[ -x $meshctl ]] || fail "$meshctl not built"

umask 077
wgif="wgt$$"
start=$SECONDS

"$meshctl" genkey >"$tmp/ours.key"
our_pub=$("$meshctl" pubkey <"$tmp/ours.key")
wg genkey >"$tmp/wggo.key"
wggo_pub=$(wg pubkey <"$tmp/wggo.key")
"$meshctl" genkey >"$tmp/stranger.key"
"$meshctl" genpsk >"$tmp/psk"

netns_pair
netns_wireguard_go "$ns2" "$wgif"
n2 wg set "$wgif" private-key "$tmp/wggo.key" listen-port 51820 \
    peer "$our_pub" allowed-ips 10.0.0.1/32,fd00::1/128
n2 ip addr add 10.0.0.2/24 dev "$wgif"
n2 ip -6 addr add fd00::2/64 dev "$wgif"
n2 ip link set "$wgif" up
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

ping_args=(ping --private-key-file "$tmp/ours.key" --peer-key "$wggo_pub" --endpoint 192.0.2.2:51820)

# Runs meshctl ping in ns1; sets $out (stdout+stderr), $rc and $took (seconds).
run_ping() {
    local t0=$SECONDS
    set +e
    out=$(n1 timeout 30 "$meshctl" "$@" 2>&1)
    rc=$?
    set -e
    took=$((SECONDS - t0))
    printf '%s\n' "$out" | sed 's/^/    /'
}

expect_replies() {
    local what=$1 from=$2
    [[ $rc -eq 0 ]] || fail "$what: meshctl ping exited $rc"
    local n
    n=$(grep -c "bytes from $from: icmp_seq=[0-9]* ttl=[0-9]* time=" <<<"$out" || true)
    [[ $n -eq 3 ]] || fail "$what: $n replies, want 3"
    grep -q "3 packets transmitted, 3 received, 0% packet loss" <<<"$out" || fail "$what: no summary line"
    grep -q "rtt min/avg/max" <<<"$out" || fail "$what: no rtt line"
}

log "IPv4 inside the tunnel: 10.0.0.1 -> 10.0.0.2"
run_ping "${ping_args[@]}" --count 3 --interval 200ms --address 10.0.0.1 10.0.0.2
expect_replies IPv4 10.0.0.2

log "IPv6 inside the tunnel: fd00::1 -> fd00::2, from UDP port 41820"
run_ping "${ping_args[@]}" --count 3 --interval 200ms --listen-port 41820 --address fd00::1 fd00::2
expect_replies IPv6 fd00::2

log "wg show on the wireguard-go side"
n2 wg show "$wgif" | sed 's/^/    /'
read -r _ hs < <(n2 wg show "$wgif" latest-handshakes)
[[ $hs -gt 0 ]] || fail "wg show: no latest handshake for our key"
read -r _ rx tx < <(n2 wg show "$wgif" transfer)
read -r _ ep < <(n2 wg show "$wgif" endpoints)
[[ $ep == 192.0.2.1:41820 ]] || fail "wg show: endpoint $ep, want 192.0.2.1:41820 (--listen-port)"
[[ $rx -gt 0 && $tx -gt 0 ]] || fail "wg show: transfer rx=$rx tx=$tx, want both non-zero"

log "pre-shared key on both sides"
n2 wg set "$wgif" peer "$our_pub" preshared-key "$tmp/psk"
run_ping "${ping_args[@]}" --count 3 --interval 200ms --psk-file "$tmp/psk" --address 10.0.0.1 10.0.0.2
expect_replies PSK 10.0.0.2

log "PSK only on the peer: the handshake must fail, not hang"
run_ping "${ping_args[@]}" --count 1 --timeout 2s --address 10.0.0.1 10.0.0.2
[[ $rc -eq 1 ]] || fail "missing PSK: exit $rc, want 1"
[[ $took -le 6 ]] || fail "missing PSK: took ${took}s with --timeout 2s"
n2 wg set "$wgif" peer "$our_pub" preshared-key /dev/null

log "wrong --peer-key: no response, clear message, within --timeout"
run_ping ping --private-key-file "$tmp/ours.key" --peer-key "$("$meshctl" genkey | "$meshctl" pubkey)" \
    --endpoint 192.0.2.2:51820 --count 1 --timeout 2s --address 10.0.0.1 10.0.0.2
[[ $rc -eq 1 ]] || fail "wrong peer key: exit $rc, want 1"
[[ $took -le 6 ]] || fail "wrong peer key: took ${took}s with --timeout 2s"
grep -q "no handshake response from 192.0.2.2:51820 within 2s" <<<"$out" || fail "wrong peer key: unclear message"
grep -qF "$our_pub" <<<"$out" || fail "wrong peer key: message does not name our public key"

log "our key not listed on the peer: same"
stranger_pub=$("$meshctl" pubkey <"$tmp/stranger.key")
run_ping ping --private-key-file "$tmp/stranger.key" --peer-key "$wggo_pub" \
    --endpoint 192.0.2.2:51820 --count 1 --timeout 2s --address 10.0.0.1 10.0.0.2
[[ $rc -eq 1 ]] || fail "unlisted key: exit $rc, want 1"
[[ $took -le 6 ]] || fail "unlisted key: took ${took}s with --timeout 2s"
grep -q "no handshake response from 192.0.2.2:51820 within 2s" <<<"$out" || fail "unlisted key: unclear message"
grep -qF "$stranger_pub" <<<"$out" || fail "unlisted key: message does not name our public key"

log "a key file others can read is refused (exit 2)"
cp "$tmp/ours.key" "$tmp/open.key"
chmod 644 "$tmp/open.key"
run_ping ping --private-key-file "$tmp/open.key" --peer-key "$wggo_pub" \
    --endpoint 192.0.2.2:51820 --count 1 --address 10.0.0.1 10.0.0.2
[[ $rc -eq 2 ]] || fail "world-readable key: exit $rc, want 2"

kill -0 "$spawned_pid" 2>/dev/null || fail "wireguard-go died: $(cat "$tmp/wireguard-go-$wgif.log")"
echo "PASS: meshctl <-> wireguard-go interop ($((SECONDS - start))s)"
