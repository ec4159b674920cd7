#!/bin/bash
# meshfwd started from mesh.yaml serves WireGuard's UAPI for its own device: `wg show` works
# against it, `wg set` changes the running node and is kept until the next SIGHUP reload, which
# brings back what the file says (issue 16).
#
#   ns1: meshfwd a, device u16ma<pid> 10.100.0.1/24  <-- veth 192.0.2.1 / .2 -->  ns2: meshfwd b, u16mb<pid>
#
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wg python3 ping
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
umask 077

deva=u16ma$$
devb=u16mb$$
netns_pair
meshfwd_key a
pub_a=$pubkey
meshfwd_key b
pub_b=$pubkey
{ node_config a "$deva" 10.100.0.1/24; peer_config "$pub_b" 10.100.0.2/32 192.0.2.2:51820 true; } >"$tmp/a.yaml"
{ node_config b "$devb" 10.100.0.2/24; peer_config "$pub_a" 10.100.0.1/32 192.0.2.1:51820 true; } >"$tmp/b.yaml"
_netns_wg_sockets+=("/var/run/wireguard/$deva.sock" "/var/run/wireguard/$devb.sock")
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"

log "ping, then wg show $deva"
tunnel_ping "$ns1" 10.100.0.2
[[ -S /var/run/wireguard/$deva.sock ]] || fail "no UAPI socket for $deva"
[[ $(stat -c %a "/var/run/wireguard/$deva.sock") == 600 ]] || fail "UAPI socket mode $(stat -c %a "/var/run/wireguard/$deva.sock")"
n1 wg show "$deva" | sed 's/^/    /'
[[ $(n1 wg show "$deva" public-key) == "$pub_a" ]] || fail "wg show public-key: $(n1 wg show "$deva" public-key)"
[[ $(n1 wg show "$deva" listen-port) == 51820 ]] || fail "wg show listen-port"
[[ $(n1 wg show "$deva" private-key) == "$(cat "$tmp/a.key")" ]] || fail "wg show private-key differs from a.key"
[[ $(n1 wg show "$deva" endpoints) == "$pub_b	192.0.2.2:51820" ]] || fail "wg show endpoints: $(n1 wg show "$deva" endpoints)"
[[ $(n1 wg show "$deva" allowed-ips) == "$pub_b	10.100.0.2/32" ]] || fail "wg show allowed-ips: $(n1 wg show "$deva" allowed-ips)"
read -r _ hs < <(n1 wg show "$deva" latest-handshakes)
(( hs > 0 )) || fail "wg show: no handshake"
read -r _ rx tx < <(n1 wg show "$deva" transfer)
(( rx > 0 && tx > 0 )) || fail "wg show transfer: rx $rx tx $tx"

log "wg set: a new peer and a changed keepalive are kept, b's session undisturbed"
x=$(wg genkey | wg pubkey)
n1 wg set "$deva" peer "$x" allowed-ips 10.100.0.9/32 peer "$pub_b" persistent-keepalive 7
[[ $(n1 wg show "$deva" peers | wc -l) == 2 ]] || fail "wg set did not add peer x"
grep -q "$pub_b	7" <(n1 wg show "$deva" persistent-keepalive) || fail "keepalive of b not 7"
peers=$(peers_json "$ns1")
[[ $(jget "$peers" "len(d['peers'])") == 2 ]] || fail "meshctl peers: not 2 peers after wg set"
read -r _ hs2 < <(n1 wg show "$deva" latest-handshakes | grep "$pub_b")
[[ $hs2 == "$hs" ]] || fail "b's handshake changed ($hs -> $hs2) after wg set"
tunnel_ping "$ns1" 10.100.0.2

log "SIGHUP: the file wins again (peer x removed, keepalive of b off)"
kill -HUP "$pid_a"
gone_x() { [[ $(n1 wg show "$deva" peers) == "$pub_b" ]]; }
wait_until 5 gone_x || fail "peer x still there after SIGHUP: $(n1 wg show "$deva" peers)"
grep -q "$pub_b	off" <(n1 wg show "$deva" persistent-keepalive) || fail "keepalive of b after SIGHUP: $(n1 wg show "$deva" persistent-keepalive)"
tunnel_ping "$ns1" 10.100.0.2

log "SIGTERM: the socket is removed"
kill -TERM "$pid_a"
wait_until 5 not_running "$pid_a" || fail "meshfwd a still running 5 s after SIGTERM"
[[ ! -e /var/run/wireguard/$deva.sock ]] || fail "UAPI socket left behind"

echo "PASS: wg show / wg set against meshfwd from mesh.yaml ($((SECONDS - start))s)"
