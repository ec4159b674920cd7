#!/bin/bash
# Offload limits end to end: TSO super-packets of hundreds of segments, bursts of 256, and UDP
# coalesced into USO writes to the device.
#
#   ns1 ($ns1)                                    ns2 ($ns2)
#   meshfwd a --cores 0, batch 256                meshfwd b --cores 1, batch 256
#     mfa0 10.100.0.1/24                            mfb0 10.100.0.2/24 (iperf3 -s)
#     UDP 51820 + lanes  --- veth1 <-> veth2 --->   UDP 51820 + lanes
#                  192.0.2.1/24   192.0.2.2/24
#
# Checks:
#  1. iperf3 -M 300 -t 3 a -> b: the kernel hands a's device reads as 64 KiB TSO super-packets
#     of ~220 segments (more than the 128 the worker once split at most, which dropped each one
#     whole as bad_offload: ~65 Mbit/s with a retransmit per segment); now at least
#     $min_tcp_mbit Mbit/s, and no bad_offload, buffer-shortage or tx_error_* drops on either node. The small
#     MSS with batch 256 also gives b bursts of 256 one-flow segments to coalesce: more than the
#     128 iovecs a device write may have, so they must go out as several writes.
#  2. iperf3 -u -l 1300 -b 0 -t 3 a -> b (1300: 1400 would be fragmented at MTU 1420, and
#     fragments are written one by one): the server receives datagrams; where b's device took
#     USO (its log says "uso true", Linux 6.2+) b must have written them with fewer than half
#     as many device writes (mfb0 rx_packets: a write is one skb) as packets it decrypted
#     (`meshctl status` workers' rx_packets); prints both either way.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs iperf3 python3 ping ss
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
min_tcp_mbit=100

# iperf3 -u too listens on TCP (its control connection) first.
iperf_listening() { [[ -n $(n2 ss -Hltn 'sport = :5201') ]]; }

meshfwd_pair_configs
sed -i 's/batch: 64/batch: 256/' "$tmp/a.yaml" "$tmp/b.yaml"
grep -q 'batch: 256' "$tmp/a.yaml" || fail "could not set batch: 256 in the config"

netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
netns_meshfwd "$ns2" b "$tmp/b.yaml" 1 "$api"
pid_b=$spawned_pid

log "handshake (ping a -> b)"
tunnel_ping "$ns1" 10.100.0.2

# Both checks run and print before the test fails, so one run shows the whole picture.
problems=()
check_drops() {
    local when=$1 side ns d r n
    for side in a b; do
        ns=$ns1
        [[ $side == a ]] || ns=$ns2
        d=$(drops_json "$ns") || fail "status --json on $side"
        echo "    node $side drops $when: $d"
        for r in bad_offload no_packet no_view no_tx_slot no_sqe too_many_iov burst_overflow tx_error_udp tx_error_device; do
            n=$(drop_count "$d" "$r")
            ((n == 0)) || problems+=("node $side: $n $r drops $when")
        done
    done
}

log "iperf3 -M 300 -t 3, a -> b (TCP, TSO super-packets of ~220 segments)"
netns_spawn "$ns2" iperf3-tcp iperf3 -s -1 -B 10.100.0.2
wait_until 5 iperf_listening || fail "iperf3 server did not listen: $(cat "$tmp/iperf3-tcp.log")"
out=$(n1 timeout 30 iperf3 -c 10.100.0.2 -M 300 -t 3 --connect-timeout 3000 -J 2>"$tmp/iperf3-tcp.err") ||
    fail "iperf3 client failed: $(tail -5 <<<"$out") $(tail -3 "$tmp/iperf3-tcp.err")"
read -r mbit retrans < <(jget "$out" "'%d %d' % (d['end']['sum_received']['bits_per_second'] / 1e6, d['end']['sum_sent'].get('retransmits', 0))")
echo "    received $mbit Mbit/s, $retrans retransmits"
((mbit >= min_tcp_mbit)) || problems+=("TCP at MSS 300: $mbit Mbit/s, want >= $min_tcp_mbit")
check_drops "after TCP"

log "iperf3 -u -l 1300 -b 0 -t 3, a -> b (UDP, coalesced into USO writes where the device takes them)"
uso=$(grep -o 'uso [a-z]*' "$tmp/meshfwd-b.log" | head -1 | cut -d' ' -f2)
echo "    b's device: uso ${uso:-?}"
writes_before=$(n2 cat /sys/class/net/mfb0/statistics/rx_packets)
# Packets b decrypted (every one of them is written to the device, alone or coalesced).
decrypted() { jget "$(status_json "$ns2")" "sum(w['rx_packets'] for w in d['workers'])"; }
in_before=$(decrypted)
netns_spawn "$ns2" iperf3-udp iperf3 -s -1 -B 10.100.0.2
wait_until 5 iperf_listening || fail "iperf3 server did not listen: $(cat "$tmp/iperf3-udp.log")"
out=$(n1 timeout 30 iperf3 -c 10.100.0.2 -u -l 1300 -b 0 -t 3 --connect-timeout 3000 -J 2>"$tmp/iperf3-udp.err") ||
    fail "iperf3 -u client failed: $(tail -5 <<<"$out") $(tail -3 "$tmp/iperf3-udp.err")"
writes=$(($(n2 cat /sys/class/net/mfb0/statistics/rx_packets) - writes_before))
datagrams=$(($(decrypted) - in_before))
read -r umbit sent lost < <(jget "$out" "'%d %d %d' % (d['end']['sum']['bits_per_second'] / 1e6, d['end']['sum']['packets'], d['end']['sum']['lost_packets'])")
echo "    sent $sent datagrams at $umbit Mbit/s, $lost lost (iperf3); b: $datagrams packets decrypted, $writes device writes"
((sent - lost > 1000)) || problems+=("UDP: only $((sent - lost)) datagrams arrived")
if [[ $uso == true ]]; then
    ((2 * writes < datagrams)) || problems+=("UDP with USO: $writes device writes for $datagrams packets, want < half")
fi
check_drops "after UDP"

((${#problems[@]} == 0)) || fail "$(printf '%s; ' "${problems[@]}")"
kill -0 "$pid_a" 2>/dev/null || fail "meshfwd a died: $(tail -5 "$tmp/meshfwd-a.log")"
kill -0 "$pid_b" 2>/dev/null || fail "meshfwd b died: $(tail -5 "$tmp/meshfwd-b.log")"
echo "PASS: TSO of hundreds of segments, batch 256 and UDP device writes ($((SECONDS - start))s)"
