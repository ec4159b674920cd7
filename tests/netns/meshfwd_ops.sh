#!/bin/bash
# What an operator runs into when starting nodes (issue 17), on the real binary:
#
#   ns1 ($ns1)                                   ns2 ($ns2)
#   meshfwd a (taskset -c 0, no --cores)         meshfwd b --cores 0
#     mfa0 10.100.0.1/24                           mfb0 10.100.0.2/24
#     UDP 51820 + lanes --- veth1 <-> veth2 ---    UDP 51820 + lanes
#                192.0.2.1/24   192.0.2.2/24
#
# - Without --cores a node starts one worker per allowed CPU: under `taskset -c 0`, one
#   (`meshctl status --json`: node.workers 1, cores [0]).
# - A second meshfwd on a's UDP port (same user, so SO_REUSEPORT would let it join a's group)
#   exits non-zero naming the port and that another process holds it; a still owns the port
#   and still passes traffic.
# - An idle node counts the kernel's own IPv6 link-local/multicast packets on its device as
#   not_routable_local, and shows no no_route.
# - examples/mesh.yaml starts as shipped in a third namespace, without warnings.
# - b's lane socket binds the first port of its dataplane.lane_ports range.
# - CAP_NET_ADMIN alone is enough: b restarted as uid 65534 with only that capability (setpriv)
#   creates its device, binds its sockets and passes traffic.
# Arg: $1 build dir. Root only (77 = skipped; see lib.sh for CI).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

netns_require_root
netns_require_programs python3 ping ss taskset setpriv
meshfwd_build "$1"
netns_python
api=127.0.0.1:7082

meshfwd_pair_configs
netns_pair
wait_until 5 n1 ping -c1 -W1 192.0.2.2 || fail "underlay veth does not work"

log "a without --cores under taskset -c 0: one worker"
netns_spawn "$ns1" meshfwd-a taskset -c 0 "$meshfwd" -c "$tmp/a.yaml" --log-level debug
pid_a=$spawned_pid
wait_until 10 status_json "$ns1" || { cat "$tmp/meshfwd-a.log" >&2; fail "meshfwd a did not start"; }
st=$(status_json "$ns1")
[[ $(jget "$st" "d['node']['workers']") == 1 && $(jget "$st" "d['node']['cores']") == "[0]" ]] ||
    fail "a: expected 1 worker on CPU 0, status: $(jget "$st" "d['node']")"
# b's lanes from a configured range (a's stay kernel-chosen).
sed -i 's/^dataplane: {poll: adaptive,/dataplane: {lane_ports: 52100-52103, poll: adaptive,/' "$tmp/b.yaml"
grep -q "lane_ports: 52100-52103" "$tmp/b.yaml" || fail "could not set lane_ports in b.yaml"
netns_meshfwd "$ns2" b "$tmp/b.yaml" 0 "$api"
pid_b=$spawned_pid
lanes_b=$(jget "$(status_json "$ns2")" "d['node']['lane_ports']")
[[ $lanes_b == "[52100]" ]] || fail "b's lane ports are $lanes_b, expected [52100] from lane_ports 52100-52103"
n2 ss -Hulnp 'sport = :52100' | grep -q "pid=$pid_b," || fail "b does not hold UDP 52100: $(n2 ss -Hulnp)"
echo "    b: lane ports $lanes_b (dataplane.lane_ports 52100-52103)"
tunnel_ping "$ns1" 10.100.0.2

log "an idle node counts the kernel's own IPv6 link-local/multicast packets apart, not as no_route"
# The kernel sends router solicitations and MLD reports on the new device by itself (within ~1-4 s
# of it coming up); bounded wait for them to show.
wait_until 10 test "$(drop_count "$(drops_json "$ns1")" not_routable_local)" -gt 0 ||
    fail "a: no not_routable_local drops after 10 s: $(drops_json "$ns1")"
d=$(drops_json "$ns1")
[[ $(drop_count "$d" no_route) -eq 0 ]] || fail "a: no_route on a node without unroutable traffic: $d"
echo "    a: not_routable_local $(drop_count "$d" not_routable_local), no_route 0"

log "a second meshfwd on a's UDP port 51820 is refused"
sed -e 's/name: mfa0/name: mfc0/' -e "s/listen: $api/listen: 127.0.0.1:7083/" "$tmp/a.yaml" >"$tmp/c.yaml"
cp "$tmp/a.key" "$tmp/c.key"
sed -i 's/private_key_file: a.key/private_key_file: c.key/' "$tmp/c.yaml"
netns_spawn "$ns1" meshfwd-c "$meshfwd" --cores 0 -c "$tmp/c.yaml"
pid_c=$spawned_pid
wait_until 10 not_running "$pid_c" || fail "the second meshfwd on port 51820 is still running"
rc=0
wait "$pid_c" || rc=$?
[[ $rc -ne 0 ]] || fail "the second meshfwd exited 0"
grep -qF "meshfwd: error: node.listen_port: UDP port 51820 is held by another process" "$tmp/meshfwd-c.log" ||
    fail "the second meshfwd's message: $(cat "$tmp/meshfwd-c.log")"
echo "    exit $rc: $(grep -F 'node.listen_port' "$tmp/meshfwd-c.log")"
n1 ip link show mfc0 >/dev/null 2>&1 && fail "the refused node left its device mfc0 behind"
owners=$(n1 ss -Hulnp 'sport = :51820')
grep -q "pid=$pid_a," <<<"$owners" || fail "a no longer holds UDP 51820: $owners"
grep -q "pid=$pid_c," <<<"$owners" && fail "the refused node still holds UDP 51820: $owners"
kill -0 "$pid_a" 2>/dev/null || fail "meshfwd a exited"
tunnel_ping "$ns1" 10.100.0.2

log "CAP_NET_ADMIN alone is enough: b restarted as nobody with only that capability"
kill -TERM "$pid_b"
wait_until 10 not_running "$pid_b" || fail "meshfwd b did not stop on SIGTERM"
mkdir "$tmp/nobody"
cp "$tmp/b.key" "$tmp/b.yaml" "$tmp/nobody/"
chown -R 65534:65534 "$tmp/nobody"
chmod 711 "$tmp"
netns_spawn "$ns2" meshfwd-b-nobody setpriv --reuid=65534 --regid=65534 --clear-groups \
    --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin \
    "$meshfwd" --cores 0 -c "$tmp/nobody/b.yaml"
pid_b=$spawned_pid
wait_until 10 status_json "$ns2" || { cat "$tmp/meshfwd-b-nobody.log" >&2; fail "meshfwd b as nobody did not start"; }
caps=$(sed -n 's/^CapEff:\s*//p' "/proc/$pid_b/status")
uid=$(awk '/^Uid:/ { print $3 }' "/proc/$pid_b/status")
[[ $caps == 0000000000001000 && $uid == 65534 ]] || fail "b runs as uid $uid with CapEff $caps, expected 65534 and CAP_NET_ADMIN only"
echo "    b: uid $uid, CapEff $caps (CAP_NET_ADMIN only)"
# The new b knows none of a's sessions: it handshakes when it has something to send.
tunnel_ping "$ns2" 10.100.0.1

log "examples/mesh.yaml starts as shipped (its key created by --init-key), without warnings"
ns3="mfx$$"
netns_add "$ns3"
mkdir "$tmp/example"
cp "$netns_dir/../../examples/mesh.yaml" "$tmp/example/"
netns_spawn "$ns3" meshfwd-example "$meshfwd" --init-key --cores 0 -c "$tmp/example/mesh.yaml"
pid_x=$spawned_pid
wait_until 10 ip netns exec "$ns3" "$meshctl" status --api 127.0.0.1:7082 ||
    { cat "$tmp/meshfwd-example.log" >&2; fail "the example did not start"; }
kill -0 "$pid_x" 2>/dev/null || fail "the example exited: $(cat "$tmp/meshfwd-example.log")"
grep -Eq "warning|error" "$tmp/meshfwd-example.log" && fail "the example logged: $(grep -E 'warning|error' "$tmp/meshfwd-example.log")"
ip -n "$ns3" addr show mesh0 | grep -q "10.100.0.1/16" || fail "the example's device mesh0 lacks 10.100.0.1/16"

echo "PASS"
