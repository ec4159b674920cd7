#!/bin/bash
# SIGHUP reload: peers removed and added while traffic to an unchanged peer keeps flowing, and an
# invalid file refused without disturbing the running node.
#
#                 ns1 ($ns1): meshfwd A --cores 0, mfa0 10.100.0.1/24
#                 br0 192.0.2.1/24 (the underlay switch lives in A's namespace)
#             veth-b /          | veth-c        \ veth-d
#   ns2: B 10.100.0.2     ns3: C 10.100.0.3     ns4: D 10.100.0.4
#   veth2 192.0.2.2       veth3 192.0.2.3       veth4 192.0.2.4
#   --cores 1             --cores 0             --cores 1
#
# A starts with peers B and C; B, C and D all list A. While A pings B every 50 ms:
#   1. A's file is rewritten (C removed, D added) and A gets SIGHUP: A <-> D works, A -> C and
#      C -> A fail (C's old session is gone on A), the A -> B stream lost at most 1 packet, and
#      B's handshake count on A did not change (its session was not touched).
#   2. An invalid file and SIGHUP: A keeps running with the previous peers (A <-> B and A <-> D
#      work, the stream again loses at most 1), and A's log names the error as file:line.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
ns3="mfc$$"
ns4="mfd$$"
n3() { ip netns exec "$ns3" "$@"; }
n4() { ip netns exec "$ns4" "$@"; }

# --- helpers ---------------------------------------------------------------------------------

# no_tunnel NS ADDR: 3 pings over 3 s must all go unanswered.
no_tunnel() {
    local out
    if out=$(ip netns exec "$1" ping -c 3 -i 0.5 -W 1 "$2" 2>&1); then
        fail "ping $2 from $1 got a reply; want none: $(tail -2 <<<"$out")"
    fi
    echo "    $1 -> $2: no reply, as wanted ($(grep -o '[0-9]* packets transmitted.*loss' <<<"$out" || tail -1 <<<"$out"))"
}

a_peers() { peers_json "$ns1"; }
# a_peer_field PUB FIELD: one field of one of A's peers.
a_peer_field() { peer_field "$ns1" "$1" "$2"; }
# peer PUB INDEX [ENDPOINT]: a peer entry for tunnel address 10.100.0.INDEX.
peer() { peer_config "$1" "10.100.0.$2/32" "${3:-}"; }
# a_has_peers PUB...: A lists exactly these peers.
a_has_peers() {
    local pj want="$*"
    pj=$(a_peers) || return 1
    [[ $(jget "$pj" "sorted(p['public_key'] for p in d['peers']) == sorted('$want'.split())") == True ]]
}

# stream_start / stream_check: A pings B every 50 ms for COUNT packets; check waits for it to end
# and allows at most one lost packet.
stream_start() {
    netns_spawn "$ns1" "stream-$1" ping -i 0.05 -c "$2" -W 2 10.100.0.2
    stream_pid=$spawned_pid
}
stream_check() {
    local name=$1 sent got
    wait_until 40 not_running "$stream_pid" || fail "stream ping $name did not finish"
    wait "$stream_pid" || true
    local summary
    summary=$(grep "packets transmitted" "$tmp/stream-$name.log") || fail "stream $name: no summary: $(tail -3 "$tmp/stream-$name.log")"
    [[ $summary =~ ([0-9]+)\ packets\ transmitted,\ ([0-9]+)\ received ]] || fail "stream $name: odd summary: $summary"
    sent=${BASH_REMATCH[1]}
    got=${BASH_REMATCH[2]}
    echo "    stream A -> B ($name): $summary"
    ((sent - got <= 1)) || fail "stream A -> B ($name): $((sent - got)) of $sent pings lost across the reload, want <= 1"
}

# --- topology --------------------------------------------------------------------------------

netns_add "$ns1"
ip -n "$ns1" link add br0 type bridge
ip -n "$ns1" addr add 192.0.2.1/24 dev br0
ip -n "$ns1" link set br0 up
i=2
for ns in "$ns2" "$ns3" "$ns4"; do
    netns_add "$ns"
    ip link add "veth$i" netns "$ns" type veth peer name "port$i" netns "$ns1"
    ip -n "$ns1" link set "port$i" master br0 up
    ip -n "$ns" addr add "192.0.2.$i/24" dev "veth$i"
    ip -n "$ns" link set "veth$i" up
    i=$((i + 1))
done
for i in 2 3 4; do
    wait_until 5 n1 ping -c1 -W1 "192.0.2.$i" || fail "underlay to 192.0.2.$i does not work"
done

declare -A pub
for name in a b c d; do
    meshfwd_key "$name"
    pub[$name]=$pubkey
done
{ node_config a mfa0 10.100.0.1/24; peer "${pub[b]}" 2 192.0.2.2:51820; peer "${pub[c]}" 3 192.0.2.3:51820; } >"$tmp/a.yaml"
{ node_config b mfb0 10.100.0.2/24; peer "${pub[a]}" 1 192.0.2.1:51820; } >"$tmp/b.yaml"
{ node_config c mfc0 10.100.0.3/24; peer "${pub[a]}" 1 192.0.2.1:51820; } >"$tmp/c.yaml"
{ node_config d mfd0 10.100.0.4/24; peer "${pub[a]}" 1 192.0.2.1:51820; } >"$tmp/d.yaml"

netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
netns_meshfwd "$ns3" c "$tmp/c.yaml" 0 "$api"
netns_meshfwd "$ns4" d "$tmp/d.yaml" 1 "$api"
pid_d=$spawned_pid
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid

log "before: A <-> B and A <-> C"
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns1" 10.100.0.3
tunnel_ping "$ns3" 10.100.0.1
hs_b=$(a_peer_field "${pub[b]}" handshakes)
echo "    handshakes with B on A: $hs_b"

# --- 1. remove C, add D ----------------------------------------------------------------------

log "reload: C removed, D added (A -> B ping stream running)"
stream_start reload 300
sleep 1
{ node_config a mfa0 10.100.0.1/24; peer "${pub[b]}" 2 192.0.2.2:51820; peer "${pub[d]}" 4 192.0.2.4:51820; } >"$tmp/a.yaml.new"
mv "$tmp/a.yaml.new" "$tmp/a.yaml"
kill -HUP "$pid_a"
wait_until 5 a_has_peers "${pub[b]}" "${pub[d]}" || fail "A's peers after SIGHUP are not {B, D}: $(a_peers)"
tunnel_ping "$ns1" 10.100.0.4
tunnel_ping "$ns4" 10.100.0.1
no_tunnel "$ns1" 10.100.0.3
no_tunnel "$ns3" 10.100.0.1
stream_check reload
[[ $(a_peer_field "${pub[b]}" handshakes) -eq $hs_b ]] ||
    fail "B's handshake count on A went from $hs_b to $(a_peer_field "${pub[b]}" handshakes) across the reload"
[[ $(a_peer_field "${pub[b]}" session) == established ]] || fail "B's session on A is not established after the reload"
kill -0 "$pid_a" 2>/dev/null || fail "A died: $(tail -5 "$tmp/meshfwd-a.log")"

# --- 2. an invalid file is refused -----------------------------------------------------------

log "reload with an invalid file (A -> B ping stream running)"
stream_start invalid 100
cp "$tmp/a.yaml" "$tmp/a.yaml.good"
sed 's/^  listen_port: 51820$/  listen_port: banana/' "$tmp/a.yaml.good" >"$tmp/a.yaml.new"
bad_line=$(grep -n 'listen_port: banana' "$tmp/a.yaml.new" | cut -d: -f1)
[[ -n $bad_line ]] || fail "test bug: could not break the config"
mv "$tmp/a.yaml.new" "$tmp/a.yaml"
kill -HUP "$pid_a"
log_has_error() { grep -E "a\.yaml:$bad_line:" "$tmp/meshfwd-a.log"; }
wait_until 5 log_has_error || fail "A's log does not name a.yaml:$bad_line: $(tail -5 "$tmp/meshfwd-a.log")"
echo "    A logged: $(log_has_error | head -3)"
grep -E "a\.yaml:$bad_line:" "$tmp/meshfwd-a.log" | grep -qiE 'error' ||
    fail "the a.yaml:$bad_line line in A's log is not an error: $(log_has_error)"
kill -0 "$pid_a" 2>/dev/null || fail "A exited on an invalid config: $(tail -5 "$tmp/meshfwd-a.log")"
a_has_peers "${pub[b]}" "${pub[d]}" || fail "A's peers changed after a refused reload: $(a_peers)"
tunnel_ping "$ns1" 10.100.0.4
tunnel_ping "$ns4" 10.100.0.1
tunnel_ping "$ns2" 10.100.0.1
no_tunnel "$ns1" 10.100.0.3
stream_check invalid
[[ $(a_peer_field "${pub[b]}" handshakes) -eq $hs_b ]] || fail "B's handshake count on A changed after the refused reload"
kill -0 "$pid_d" 2>/dev/null || fail "D died: $(tail -5 "$tmp/meshfwd-d.log")"

echo "PASS: SIGHUP reload: peers removed and added, invalid file refused ($((SECONDS - start))s)"
