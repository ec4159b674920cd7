#!/bin/bash
# meshfwd against wireguard-go across a session rekey: after REKEY_AFTER_TIME (120 s) the
# initiator's session must be replaced by a new handshake while traffic keeps flowing. No other
# test runs that long, so this is the only end-to-end check of the rekey path (a worker flags
# rekey_wanted when it sends on an initiator session >= 120 s old; the control thread starts a
# handshake; the new session takes over, the old one still decrypts what was in flight).
#
#   ns1 ($ns1)                                    ns2 ($ns2)
#   meshfwd a --cores 0                           wireguard-go wgr<pid> (set up with wg)
#     mfa0 10.100.0.1/24                            10.100.0.2/24
#     UDP 51820  ------ veth1 <-> veth2 ------->    UDP 51820
#                  192.0.2.1/24   192.0.2.2/24
#
# Our peer entry has wireguard-go's endpoint, wireguard-go's has none, and ns1 pings first, so
# meshfwd is the initiator (wireguard-go, the responder, would not rekey before 165 s). Then a
# pings b every 0.2 s for 135 s. Checks afterwards:
#   1. a second handshake happened, initiated by meshfwd, 120-130 s after the first: wg's latest
#      handshake advanced by >= 115 s, meshfwd's latest_handshake_unix by 120-130 s, its
#      initiations_sent, responses_received, sessions_established and the peer's handshakes went
#      up, and its initiations_received did not (wireguard-go did not start it);
#   2. the ping lost at most 2 of its 675 packets (the rekey does not interrupt traffic);
#   3. no unknown_index / bad_auth / replay drops on a (totals.drops in meshctl status);
#   4. pings both ways still work after the rekey;
#   5. meshfwd exits 0 on SIGTERM and removes mfa0.
#
# Meanwhile a second pair checks REJECT_AFTER_TIME (180 s), which needs a session that cannot
# be replaced: meshfwd r (ns1, mfr0 10.101.0.1, UDP 51821) and meshfwd c (ns2, mfc0
# 10.101.0.2, UDP 51821). After their first handshake, nftables in ns2 drops every handshake
# message (types 1-3) to or from port 51821, and r pings c every 0.5 s until 195 s. Checks:
#   6. every ping sent before 175 s is answered (at most 2 lost), and the last answered one was
#      sent 175-182 s after the handshake: r's 180 s old session neither sends nor receives;
#   7. r kept retrying (initiations_sent up by >= 8, nftables dropped them), `meshctl peers`
#      no longer calls the session "established", and r holds the pings as staged packets;
#   8. once handshakes pass again, r makes a new session and pings c;
#   9. r and c exit 0 on SIGTERM.
# Takes about 3.5 minutes.
# Arg: $1 build dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs wireguard-go wg python3 ping
meshfwd_build "$1"
netns_python
start=$SECONDS
api=127.0.0.1:7082
wgif="wgr$$"
umask 077

# --- helpers ---------------------------------------------------------------------------------

# snapshot NAME: fills the associative array NAME with sent, resp_rx, init_rx, est (meshctl
# status: handshakes), peer_hs, peer_unix (meshctl peers, peer wireguard-go) and wg_unix (wg
# show latest-handshakes, peer a), and prints them on one line.
snapshot() {
    local -n snap=$1
    local sj pj _ wg_unix k line="    $1:" sel="[p for p in d['peers'] if p['public_key'] == '$pub_wg'][0]"
    sj=$(status_json "$ns1") || fail "meshctl status --json"
    pj=$(peers_json "$ns1") || fail "meshctl peers --json"
    read -r _ wg_unix < <(n2 wg show "$wgif" latest-handshakes)
    snap["sent"]=$(jget "$sj" "d['handshakes']['initiations_sent']")
    snap["resp_rx"]=$(jget "$sj" "d['handshakes']['responses_received']")
    snap["init_rx"]=$(jget "$sj" "d['handshakes']['initiations_received']")
    snap["est"]=$(jget "$sj" "d['handshakes']['sessions_established']")
    snap["peer_hs"]=$(jget "$pj" "${sel}['handshakes']")
    snap["peer_unix"]=$(jget "$pj" "${sel}['latest_handshake_unix']")
    snap["wg_unix"]=$wg_unix
    for k in sent resp_rx init_rx est peer_hs peer_unix wg_unix; do
        line+=" $k=${snap[$k]}"
    done
    echo "$line"
}
declare -A first after

# --- setup -----------------------------------------------------------------------------------

meshfwd_key a
pub_a=$pubkey
wg genkey >"$tmp/wggo.key"
pub_wg=$(wg pubkey <"$tmp/wggo.key")
netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

netns_wireguard_go "$ns2" "$wgif"
wg_pid=$spawned_pid
n2 wg set "$wgif" private-key "$tmp/wggo.key" listen-port 51820 peer "$pub_a" allowed-ips 10.100.0.1/32
n2 ip addr add 10.100.0.2/24 dev "$wgif"
n2 ip link set "$wgif" mtu 1420 up

{ node_config a mfa0 "10.100.0.1/24"; peer_config "$pub_wg" "10.100.0.2/32" 192.0.2.2:51820 false; } >"$tmp/a.yaml"
netns_meshfwd "$ns1" a "$tmp/a.yaml" 0 "$api"
pid_a=$spawned_pid
log_a=$tmp/meshfwd-a.log

# The REJECT_AFTER_TIME pair (checks 6-9): r in ns1, c in ns2, both on port 51821, API 7083.
r_api=127.0.0.1:7083
meshfwd_key r
pub_r=$pubkey
meshfwd_key c
pub_c=$pubkey
{ api=$r_api node_config r mfr0 "10.101.0.1/24"; peer_config "$pub_c" "10.101.0.2/32" 192.0.2.2:51821 true; } >"$tmp/r.yaml"
{ api=$r_api node_config c mfc0 "10.101.0.2/24"; peer_config "$pub_r" "10.101.0.1/32" "" true; } >"$tmp/c.yaml"
sed -i 's/listen_port: 51820/listen_port: 51821/' "$tmp/r.yaml" "$tmp/c.yaml"
netns_meshfwd "$ns1" r "$tmp/r.yaml" 0 "$r_api"
pid_r=$spawned_pid
netns_meshfwd "$ns2" c "$tmp/c.yaml" 0 "$r_api"
pid_c=$spawned_pid
r_peer() { api=$r_api peer_field "$ns1" "$pub_c" "$1"; }
r_initiations() { local sj; sj=$(api=$r_api status_json "$ns1") || fail "meshctl status (r)"; jget "$sj" "d['handshakes']['initiations_sent']"; }

# --- first handshake: meshfwd initiates ------------------------------------------------------

log "first handshake: a pings b"
tunnel_ping "$ns1" 10.100.0.2
snapshot first
[[ ${first[peer_hs]} -ge 1 && ${first[sent]} -ge 1 && ${first[resp_rx]} -ge 1 ]] ||
    fail "a did not complete a handshake it initiated (see above)"
[[ ${first[init_rx]} -eq 0 ]] || fail "wireguard-go sent an initiation; meshfwd should be the initiator"
[[ ${first[peer_unix]} -gt 0 && ${first[wg_unix]} -gt 0 ]] || fail "a latest handshake time is 0"
hs_mono=$SECONDS

log "r and c: first handshake, then nftables in ns2 drops handshake messages on port 51821"
tunnel_ping "$ns1" 10.101.0.2
r_hs_unix=$(r_peer latest_handshake_unix)
((r_hs_unix > 0)) || fail "r's latest handshake time is 0"
ip netns exec "$ns2" nft -f - <<'NFT'
table inet meshfwd_rekey_block {
    chain input { type filter hook input priority 0; udp dport 51821 @th,64,8 { 1, 2, 3 } counter drop; }
    chain output { type filter hook output priority 0; udp sport 51821 @th,64,8 { 1, 2, 3 } counter drop; }
}
NFT
r_sent_before=$(r_initiations)
# -D: each reply line starts with its Unix time. Runs until 195 s after r's handshake.
netns_spawn "$ns1" ping-r timeout 240 ping -D -n -i 0.5 -W 1 -c $(((r_hs_unix + 195 - $(date +%s)) * 2)) 10.101.0.2
pid_ping_r=$spawned_pid

# --- 135 s of pings across REKEY_AFTER_TIME --------------------------------------------------

log "a pings b every 0.2 s for 135 s (the rekey is due 120 s after the first handshake)"
ping_out=$(n1 timeout 170 ping -c 675 -i 0.2 -W 1 10.100.0.2 2>&1) || true
summary=$(grep -o '[0-9]* packets transmitted.*loss' <<<"$ping_out" || true)
[[ -n $summary ]] || fail "ping gave no summary: $(tail -3 <<<"$ping_out")"
echo "    $summary (ended $((SECONDS - hs_mono)) s after the first handshake)"
sent_pkts=$(awk '{ print $1 }' <<<"$summary")
recv_pkts=$(grep -o '[0-9]* received' <<<"$summary" | awk '{ print $1 }')
lost=$((sent_pkts - recv_pkts))
# Which icmp_seq went unanswered (ping prints one line per reply).
missing=$("$py" -c '
import re, sys
got = {int(m) for m in re.findall(r"icmp_seq=(\d+) ", sys.stdin.read())}
print(" ".join(str(i) for i in range(1, int(sys.argv[1]) + 1) if i not in got) or "none")' "$sent_pkts" <<<"$ping_out")
echo "    lost $lost; unanswered icmp_seq: $missing"

snapshot after
rekey_at=$((after[peer_unix] - first[peer_unix]))
wg_advance=$((after[wg_unix] - first[wg_unix]))
echo "    meshfwd: latest handshake $rekey_at s after the first; initiations sent +$((after[sent] - first[sent]))," \
    "responses received +$((after[resp_rx] - first[resp_rx])), sessions established +$((after[est] - first[est]))," \
    "peer handshakes +$((after[peer_hs] - first[peer_hs])), initiations received +$((after[init_rx] - first[init_rx]))"
echo "    wireguard-go: latest handshake advanced $wg_advance s"
grep -E 'handshake initiation sent|session established' "$log_a" | sed 's/^/    log: /' || true

# --- checks ----------------------------------------------------------------------------------

log "checks"
kill -0 "$pid_a" 2>/dev/null || fail "meshfwd a died: $(tail -5 "$log_a")"
kill -0 "$wg_pid" 2>/dev/null || fail "wireguard-go died: $(tail -5 "$tmp/wireguard-go-$wgif.log")"
# 1. The rekey: one more handshake, ours, on time.
((after[peer_hs] > first[peer_hs])) || fail "no second handshake on a (peer handshakes ${first[peer_hs]} -> ${after[peer_hs]})"
((after[sent] > first[sent])) || fail "a sent no new initiation (initiations_sent ${first[sent]} -> ${after[sent]})"
((after[resp_rx] > first[resp_rx])) || fail "a got no new response (responses_received ${first[resp_rx]} -> ${after[resp_rx]})"
((after[est] > first[est])) || fail "a established no new session (${first[est]} -> ${after[est]})"
((after[init_rx] == first[init_rx])) ||
    fail "wireguard-go initiated (initiations_received ${first[init_rx]} -> ${after[init_rx]}); the rekey should be a's"
((rekey_at >= 120 && rekey_at <= 130)) ||
    fail "a's second handshake came $rekey_at s after the first; want 120-130 s (REKEY_AFTER_TIME, while sending)"
((wg_advance >= 115)) || fail "wg's latest handshake advanced only $wg_advance s; want >= 115 s"
# 2. No interruption.
((sent_pkts == 675)) || fail "ping sent $sent_pkts packets, want 675"
((lost <= 2)) || fail "the ping across the rekey lost $lost packets (icmp_seq $missing); at most 2 allowed"
# 3. Nothing failed to decrypt or match a session.
drops=$(drops_json "$ns1") || fail "meshctl status --json"
echo "    a drops: $drops"
for reason in unknown_index bad_auth replay; do
    n=$(drop_count "$drops" "$reason")
    [[ $n -eq 0 ]] || fail "a dropped $n packets as $reason"
done
# 4. The new session works both ways.
[[ $(peer_field "$ns1" "$pub_wg" session) == established ]] || fail "a's session is not 'established' after the rekey"
tunnel_ping "$ns1" 10.100.0.2
tunnel_ping "$ns2" 10.100.0.1
n2 wg show "$wgif" | sed 's/^/    /'

# 6-9. REJECT_AFTER_TIME on the blocked pair.
log "r and c: REJECT_AFTER_TIME (r's ping runs until 195 s after its handshake)"
wait "$pid_ping_r" || true  # bounded: timeout 240
kill -0 "$pid_r" 2>/dev/null || fail "meshfwd r died: $(tail -5 "$tmp/meshfwd-r.log")"
kill -0 "$pid_c" 2>/dev/null || fail "meshfwd c died: $(tail -5 "$tmp/meshfwd-c.log")"
# Prints: answered, sent before 175 s, when the last answered one was sent (s after the
# handshake). A ping's send time is its reply's time less its RTT; seq N+1 leaves 0.5 s after N.
read -r r_ok r_due r_last < <("$py" - "$tmp/ping-r.log" "$r_hs_unix" <<'PY'
import re, sys
text, hs = open(sys.argv[1]).read(), int(sys.argv[2])
sent_at = {int(seq): float(ts) - float(ms) / 1000 for ts, seq, ms in
           re.findall(r"^\[(\d+\.\d+)\] .* icmp_seq=(\d+) .* time=([\d.]+) ms", text, re.M)}
m = re.search(r"(\d+) packets transmitted", text)
if not sent_at or not m:
    print(0, 0, -1)
    sys.exit()
first = min(sent_at)
t1 = sent_at[first] - (first - 1) * 0.5
due = [n for n in range(1, int(m.group(1)) + 1) if t1 + (n - 1) * 0.5 < hs + 175]
print(sum(1 for n in due if n in sent_at), len(due), round(max(sent_at.values()) - hs, 1))
PY
)
echo "    r -> c: $r_ok of the $r_due pings sent before 175 s answered; the last answered one was sent $r_last s after the handshake"
((r_due >= 300 && r_ok >= r_due - 2)) || fail "r's pings before REJECT_AFTER_TIME: $r_ok of $r_due answered ($(tail -2 "$tmp/ping-r.log"))"
"$py" -c "import sys; sys.exit(not 175 <= float(sys.argv[1]) <= 182)" "$r_last" ||
    fail "the last ping of r's that got an answer was sent $r_last s after its handshake; want 175-182 s (REJECT_AFTER_TIME 180 s)"
r_sent_after=$(r_initiations)
blocked=$(ip netns exec "$ns2" nft list table inet meshfwd_rekey_block | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
r_session=$(r_peer session)
r_staged=$(r_peer staged_packets)
echo "    r: initiations sent +$((r_sent_after - r_sent_before)), nftables dropped $blocked handshake messages," \
    "session '$r_session', $r_staged staged packets"
((r_sent_after - r_sent_before >= 8)) ||
    fail "r sent only $((r_sent_after - r_sent_before)) initiations while blocked; want >= 8 (a retry every 5 s from 120 s)"
((blocked >= 8)) || fail "nftables dropped only $blocked handshake messages"
[[ $r_session != established ]] || fail "r's peer c is still 'established' past REJECT_AFTER_TIME"
((r_staged >= 1)) || fail "r holds no staged packets past REJECT_AFTER_TIME"
log "r and c: handshakes pass again"
ip netns exec "$ns2" nft delete table inet meshfwd_rekey_block
tunnel_ping "$ns1" 10.101.0.2
r_hs2_unix=$(r_peer latest_handshake_unix)
((r_hs2_unix >= r_hs_unix + 180)) || fail "r's latest handshake did not advance past REJECT_AFTER_TIME ($r_hs_unix -> $r_hs2_unix)"
[[ $(r_peer session) == established ]] || fail "r's session is not 'established' after the new handshake"
kill -TERM "$pid_r" "$pid_c"
for pid in "$pid_r" "$pid_c"; do
    wait_until 5 not_running "$pid" || fail "meshfwd (pid $pid) still running 5 s after SIGTERM"
    rc=0
    wait "$pid" || rc=$?
    [[ $rc -eq 0 ]] || fail "meshfwd (pid $pid) exited $rc after SIGTERM"
done

# 5. Clean stop.
log "SIGTERM"
kill -TERM "$pid_a"
wait_until 5 not_running "$pid_a" || fail "meshfwd a still running 5 s after SIGTERM"
rc=0
wait "$pid_a" || rc=$?
[[ $rc -eq 0 ]] || fail "meshfwd a exited $rc after SIGTERM: $(tail -5 "$log_a")"
if n1 ip link show mfa0 >/dev/null 2>&1; then
    fail "mfa0 still exists after meshfwd a exited"
fi
if grep -E '\[(error|critical)\]|meshfwd: error' "$log_a"; then
    fail "meshfwd a logged errors (above)"
fi
echo "PASS: meshfwd rekeyed with wireguard-go after $rekey_at s, $lost of 675 pings lost; r's last ping through" \
    "its blocked session left $r_last s after the handshake, and it rekeyed once unblocked ($((SECONDS - start))s)"
