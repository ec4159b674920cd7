#!/bin/bash
# bench/scaling/run.sh: how one meshfwd peer pair scales with its workers. For each N in the
# list, node a runs `meshfwd --cores 0..N-1` and node b `--cores 8..8+N-1` (two namespaces over
# veth, as in tests/netns/meshfwd_workers.sh: both `meshfwd: true`, so the pair uses lanes);
# iperf3 runs outside those cores: STREAMS clients in a, one process each, on cores 4-7 (and
# their servers in b on 12-15), so the load generator is not what limits the result. Measures
# TCP with STREAMS streams and with one, DURATION s each, REPS times (median reported), and
# each worker's share of the packets. Needs 16 CPUs, root, iperf3, ip, ping, ss.
# SYSTEM=wireguard-go measures wireguard-go the same way instead (taskset to the same cores,
# GOMAXPROCS=N; wireguard-go and wg must be installed).
#
#   [SYSTEM=meshfwd|wireguard-go] bench/scaling/run.sh BUILD_DIR [WORKER_COUNTS (default "1 2 4")]
#                                 [DURATION (10)] [REPS (3)] [STREAMS (8)]
#
# Output: a table on stdout, and per-worker packet shares of the last STREAMS run for each N.
set -euo pipefail
. "$(dirname "$0")/../../tests/netns/lib.sh"

netns_require_root
netns_require_programs iperf3 python3 ping ss taskset
meshfwd_build "$1"
system=${SYSTEM:-meshfwd}
case $system in
meshfwd) ;;
wireguard-go) netns_require_programs wireguard-go wg ;;
*) fail "SYSTEM is meshfwd or wireguard-go, not $system" ;;
esac
netns_python
counts=${2:-"1 2 4"}
duration=${3:-10}
reps=${4:-3}
streams=${5:-8}
api=127.0.0.1:7090
(($(nproc) >= 16)) || fail "needs 16 CPUs (this machine has $(nproc))"
for n in $counts; do ((n >= 1 && n <= 4)) || fail "worker counts are 1..4 (cores 0-3 and 8-11)"; done

meshfwd_pair_configs

netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

listening() { [[ -n $(n2 ss -Hltn "sport = :$1") ]]; }

# iperf3 3.12 is single-threaded: one process per stream, each pinned to its own core.
# run_tcp K: K streams a -> b for $duration s; prints the receivers' summed Gbit/s.
run_tcp() {
    local k=$1 i pids=() port
    for ((i = 0; i < k; i++)); do
        port=$((5301 + i))
        netns_spawn "$ns2" "srv$i" taskset -c $((12 + i % 4)) iperf3 -s -1 -p "$port" -B 10.100.0.2
    done
    for ((i = 0; i < k; i++)); do
        port=$((5301 + i))
        wait_until 5 listening "$port" || fail "iperf3 server $i not listening"
    done
    for ((i = 0; i < k; i++)); do
        port=$((5301 + i))
        n1 taskset -c $((4 + i % 4)) timeout $((duration + 20)) iperf3 -c 10.100.0.2 -p "$port" -t "$duration" \
            --connect-timeout 3000 -J >"$tmp/cli$i.json" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fail "iperf3 client failed: $(tail -3 "$tmp"/cli*.json)"; done
    "$py" - "$tmp" "$k" <<'PY'
import json, sys
tmp, k = sys.argv[1], int(sys.argv[2])
total = 0.0
for i in range(k):
    doc = json.load(open("%s/cli%d.json" % (tmp, i)))
    total += doc["end"]["sum_received"]["bits_per_second"]
print("%.2f" % (total / 1e9))
PY
}

shares() {  # shares NS: each worker's share of that node's packets
    status_json "$1" | "$py" -c '
import json, sys
w = json.load(sys.stdin)["workers"]
t = sum(x["rx_packets"] + x["tx_packets"] for x in w) or 1
print(" ".join("%s:%.0f%%" % (x["cpu"], 100.0 * (x["rx_packets"] + x["tx_packets"]) / t) for x in w))'
}

median() { "$py" -c 'import statistics, sys; print("%.2f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# start_nodes N CORES_A CORES_B: the two tunnel ends on those cores; sets pid_a, pid_b.
start_nodes() {
    local n=$1 cores_a=$2 cores_b=$3
    if [[ $system == meshfwd ]]; then
        netns_meshfwd "$ns1" a "$tmp/a.yaml" "$cores_a" "$api"
        pid_a=$spawned_pid
        netns_meshfwd "$ns2" b "$tmp/b.yaml" "$cores_b" "$api"
        pid_b=$spawned_pid
        return
    fi
    # A new interface name for each N: the last one's socket may outlive its process briefly.
    local side ns cores ifname addr peer_pub peer_ep peer_ip
    for side in a b; do
        if [[ $side == a ]]; then
            ns=$ns1 cores=$cores_a addr=10.100.0.1 peer_pub=$wg_pub_b peer_ep=192.0.2.2:51820 peer_ip=10.100.0.2
        else
            ns=$ns2 cores=$cores_b addr=10.100.0.2 peer_pub=$wg_pub_a peer_ep=192.0.2.1:51820 peer_ip=10.100.0.1
        fi
        ifname="ws$side$n$$"
        netns_wireguard_go "$ns" "$ifname" "$cores" "$n"
        eval "pid_$side=\$spawned_pid"
        ip netns exec "$ns" wg set "$ifname" private-key "$tmp/wg$side.key" listen-port 51820 \
            peer "$peer_pub" allowed-ips "$peer_ip/32" endpoint "$peer_ep"
        ip -n "$ns" addr add "$addr/24" dev "$ifname"
        ip -n "$ns" link set "$ifname" mtu 1420 up
    done
}
if [[ $system == wireguard-go ]]; then
    (umask 077 && wg genkey >"$tmp/wga.key" && wg genkey >"$tmp/wgb.key")
    wg_pub_a=$(wg pubkey <"$tmp/wga.key")
    wg_pub_b=$(wg pubkey <"$tmp/wgb.key")
fi

results=()
for n in $counts; do
    cores_a="0-$((n - 1))"
    cores_b="8-$((8 + n - 1))"
    log "N=$n: a --cores $cores_a, b --cores $cores_b"
    start_nodes "$n" "$cores_a" "$cores_b"
    tunnel_ping "$ns1" 10.100.0.2
    multi=() single=()
    for ((r = 0; r < reps; r++)); do
        multi+=("$(run_tcp "$streams")")
        single+=("$(run_tcp 1)")
        echo "    rep $r: TCP x$streams ${multi[-1]} Gbit/s, TCP x1 ${single[-1]} Gbit/s"
    done
    run_tcp "$streams" >/dev/null
    [[ $system != meshfwd ]] || echo "    worker shares (rx+tx packets) a: $(shares "$ns1")  b: $(shares "$ns2")"
    results+=("$n $(median "${multi[@]}") $(median "${single[@]}")")
    kill -TERM "$pid_a" "$pid_b"
    wait_until 10 not_running "$pid_a" && wait_until 10 not_running "$pid_b" || fail "$system did not stop"
    sleep 1
done

echo
echo "one $system peer pair, TCP a -> b, iperf3 on separate cores, median of $reps x ${duration}s"
printf "%-8s %16s %10s %14s\n" workers "TCP x$streams Gbit/s" "vs N=1" "TCP x1 Gbit/s"
base=""
for row in "${results[@]}"; do
    read -r n m s <<<"$row"
    [[ -n $base ]] || base=$m
    printf "%-8s %16s %9.2fx %14s\n" "$n" "$m" "$("$py" -c "print($m / $base if $base > 0 else 0)")" "$s"
done
