#!/bin/bash
# Crossing handshakes: two nodes that initiate at the same moment (a mesh learning of a new node,
# or a pair started together) must have a session in one round trip, not after REKEY_TIMEOUT.
#
#   ns1 ($ns1)                              ns2 ($ns2)
#   meshfwd a 192.0.2.1:51820               node b 192.0.2.2:51820: meshfwd, then wireguard-go
#   crossing_gate.py, one process:
#     192.0.2.1:52001 (b's endpoint for a)  192.0.2.2:52000 (a's endpoint for b)
#
# The gate holds every datagram until both nodes have sent one (their first initiations, from
# persistent_keepalive at start-up), then releases them together: each node receives the other's
# initiation while its own is outstanding, every time. Before the fix both responses were
# dropped and nothing flowed for 5 s.
# Round 1, meshfwd <-> meshfwd: both sessions established within 2 s of the gate opening, a
#   ping each way answered at the first try, one initiation each (no retry).
# Round 2, meshfwd <-> wireguard-go: the same for meshfwd (wireguard-go, like the kernel, drops
#   our response to its initiation; ours still completes), pings both ways at the first try.
# Arg: $1 build dir. Root only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wireguard-go wg python3 ping
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
umask 077

# gate: starts crossing_gate.py in ns2 (fresh each round); sets gate_pid.
gate() {
    rm -f "$tmp/opened"
    netns_spawn "$ns2" "gate-$1" "$py" "$netns_dir/crossing_gate.py" --a-side 192.0.2.2:52000 \
        --b-side 192.0.2.1:52001 --b-side-netns "$ns1" --a 192.0.2.1:51820 --b 192.0.2.2:51820 --lifetime 120 --opened "$tmp/opened"
    gate_pid=$spawned_pid
    wait_until 5 grep -q listening "$tmp/gate-$1.log" || fail "crossing_gate.py did not start: $(cat "$tmp/gate-$1.log")"
}

# wait_gate: until the gate has opened (both nodes sent), 10 s at most.
wait_gate() { wait_until 10 test -s "$tmp/opened" || fail "the gate never opened: $(cat "$tmp"/gate-*.log)"; }

established() { [[ $(peer_field "$1" "$2" session) == established ]]; }

# hs_counter NS NAME: a handshake counter of the node in NS.
hs_counter() { jget "$(status_json "$1")" "d['handshakes']['$2']"; }

# first_try_ping NS ADDR: one ping, answered within 1 s, no retry.
first_try_ping() {
    ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null || fail "ping $2 from $1: not answered at the first try"
    echo "    $1 -> $2: answered at the first try"
}

meshfwd_key a
pub_a=$pubkey
meshfwd_key b
pub_b=$pubkey
netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"
keepalive() { echo "    persistent_keepalive: 25s"; }
{ node_config a mfa0 10.100.0.1/24; peer_config "$pub_b" 10.100.0.2/32 192.0.2.2:52000 true; keepalive; } >"$tmp/a.yaml"
{ node_config b mfb0 10.100.0.2/24; peer_config "$pub_a" 10.100.0.1/32 192.0.2.1:52001 true; keepalive; } >"$tmp/b.yaml"

# --- round 1: meshfwd <-> meshfwd -------------------------------------------------------------
log "round 1: meshfwd a and b start behind the gate"
gate 1
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
pid_b=$spawned_pid
wait_gate
wait_until 2 established "$ns1" "$pub_b" || fail "a: no session 2 s after the initiations crossed (stall)"
wait_until 2 established "$ns2" "$pub_a" || fail "b: no session 2 s after the initiations crossed (stall)"
echo "    both sessions established within 2 s of the gate opening"
first_try_ping "$ns1" 10.100.0.2
first_try_ping "$ns2" 10.100.0.1
for ns in "$ns1" "$ns2"; do
    sent=$(hs_counter "$ns" initiations_sent)
    received=$(hs_counter "$ns" initiations_received)
    responses=$(hs_counter "$ns" responses_received)
    echo "    $ns: initiations sent $sent, received $received; responses received $responses"
    [[ $sent -eq 1 && $received -eq 1 ]] || fail "$ns: the initiations did not cross once each (sent $sent, received $received)"
    [[ $responses -eq 1 ]] || fail "$ns: our initiation was not completed by the crossing response"
done
tunnel_ping "$ns1" 10.100.0.2
kill -TERM "$pid_a" "$pid_b" "$gate_pid"
wait_until 5 not_running "$pid_a" || fail "meshfwd a still running 5 s after SIGTERM"
wait_until 5 not_running "$pid_b" || fail "meshfwd b still running 5 s after SIGTERM"
wait_until 5 not_running "$gate_pid" || fail "the gate still running 5 s after SIGTERM"
cat "$tmp/gate-1.log"

# --- round 2: meshfwd <-> wireguard-go --------------------------------------------------------
log "round 2: meshfwd a and wireguard-go start behind the gate"
gate 2
wg genkey >"$tmp/wggo.key"
pub_wg=$(wg pubkey <"$tmp/wggo.key")
{ node_config a mfa0 10.100.0.1/24; peer_config "$pub_wg" 10.100.0.2/32 192.0.2.2:52000; keepalive; } >"$tmp/a.yaml"
wgif=wgx$$
netns_wireguard_go "$ns2" "$wgif"
wg_pid=$spawned_pid
n2 ip addr add 10.100.0.2/24 dev "$wgif"
n2 ip link set "$wgif" mtu 1420 up
n2 wg set "$wgif" private-key "$tmp/wggo.key" listen-port 51820 \
    peer "$pub_a" allowed-ips 10.100.0.1/32 endpoint 192.0.2.1:52001 persistent-keepalive 25
netns_meshfwd "$ns1" a2 "$tmp/a.yaml" 0 "$api"
wait_gate
wait_until 2 established "$ns1" "$pub_wg" || fail "a: no session with wireguard-go 2 s after the initiations crossed"
echo "    a's session established within 2 s of the gate opening"
first_try_ping "$ns1" 10.100.0.2
first_try_ping "$ns2" 10.100.0.1
sent=$(hs_counter "$ns1" initiations_sent)
[[ $sent -eq 1 ]] || fail "a sent $sent initiations, want 1 (the crossing one completed)"
n2 wg show "$wgif" | sed 's/^/    /'
kill -0 "$wg_pid" 2>/dev/null || fail "wireguard-go died"
echo "PASS: crossing handshakes complete in one round trip, meshfwd and wireguard-go ($((SECONDS - start))s)"
