#!/bin/bash
# Tunnel ping RTT, meshfwd against wireguard-go, in interleaved rounds: one namespace pair, and
# each round runs bare veth, then every meshfwd build given (fresh processes), then wireguard-go,
# 400 pings at 10 ms each. Interleaving keeps slow drift of a shared VM (steal time, noisy
# neighbours) out of the comparison; read the ratios within a round.
#
#   bench/latency/ping_rounds.sh ROUNDS CORES BUILD[@SPIN]...
#   e.g. bench/latency/ping_rounds.sh 3 0-1 build build@0s build@500us
#
# CORES is meshfwd's --cores on both nodes; SPIN sets dataplane.spin (else the default). PINGS=N
# and PINGPIN="taskset -c 0" (pin the ping process) in the environment change the ping.
# Root only; every namespace and process is removed at exit (tests/netns/lib.sh).
set -euo pipefail
. "$(dirname "$0")/../../tests/netns/lib.sh"

netns_require_root
netns_require_programs ping wireguard-go wg
(($# >= 3)) || { sed -n 2,12p "$0" >&2; exit 2; }
rounds=$1 cores=$2
shift 2
specs=("$@")
build=${specs[0]%%@*}
[[ -x $build/tools/meshfwd ]] || fail "$build/tools/meshfwd not built"
netns_python
api=127.0.0.1:7082
pings=${PINGS:-400}

meshfwd_key a
pub_a=$pubkey
meshfwd_key b
pub_b=$pubkey
netns_pair

# Prints "avg A p50 B p90 C" (ms) of ping's per-packet times.
rtt_summary() {
    grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
        awk '{a[NR] = $1; s += $1} END {printf "avg %.3f p50 %.3f p90 %.3f", s / NR, a[int(NR * .5)], a[int(NR * .9)]}'
}
tunnel_rtt() { ip netns exec "$ns1" ${PINGPIN:-} ping -n -i 0.01 -c "$pings" "$1" | rtt_summary; }

for ((r = 1; r <= rounds; r++)); do
    log "round $r of $rounds"
    echo "    veth                 $(tunnel_rtt 192.0.2.2)"
    for spec in "${specs[@]}"; do
        build=${spec%%@*}
        { node_config a mfa0 "10.100.0.1/24"; peer_config "$pub_b" "10.100.0.2/32" 192.0.2.2:51820 true; } >"$tmp/a.yaml"
        { node_config b mfb0 "10.100.0.2/24"; peer_config "$pub_a" "10.100.0.1/32" 192.0.2.1:51820 true; } >"$tmp/b.yaml"
        if [[ $spec == *@* ]]; then
            sed -i "s|^dataplane: {|dataplane: {spin: ${spec#*@}, |" "$tmp/a.yaml" "$tmp/b.yaml"
        fi
        netns_meshfwd "$ns1" a "$tmp/a.yaml" "$cores" "$api"
        pid_a=$spawned_pid
        netns_meshfwd "$ns2" b "$tmp/b.yaml" "$cores" "$api"
        pid_b=$spawned_pid
        tunnel_ping "$ns1" 10.100.0.2 >/dev/null
        printf '    %-20s %s\n' "meshfwd $spec" "$(tunnel_rtt 10.100.0.2)"
        kill "$pid_a" "$pid_b"
        wait "$pid_a" "$pid_b" 2>/dev/null || true
    done
    ifa=wgpa$$$r ifb=wgpb$$$r
    netns_wireguard_go "$ns1" "$ifa"
    wg_a=$spawned_pid
    netns_wireguard_go "$ns2" "$ifb"
    wg_b=$spawned_pid
    n1 ip addr add 10.100.0.1/24 dev "$ifa"
    n1 ip link set "$ifa" mtu 1420 up
    n2 ip addr add 10.100.0.2/24 dev "$ifb"
    n2 ip link set "$ifb" mtu 1420 up
    n1 wg set "$ifa" private-key "$tmp/a.key" listen-port 51820 peer "$pub_b" allowed-ips 10.100.0.2/32 endpoint 192.0.2.2:51820
    n2 wg set "$ifb" private-key "$tmp/b.key" listen-port 51820 peer "$pub_a" allowed-ips 10.100.0.1/32 endpoint 192.0.2.1:51820
    tunnel_ping "$ns1" 10.100.0.2 >/dev/null
    printf '    %-20s %s\n' "wireguard-go" "$(tunnel_rtt 10.100.0.2)"
    kill "$wg_a" "$wg_b"
    wait "$wg_a" "$wg_b" 2>/dev/null || true
done
