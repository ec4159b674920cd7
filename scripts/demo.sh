#!/usr/bin/env bash
# The README's first command, as root on Debian 12. It
#   1. installs dependencies (scripts/install-deps.sh) and builds meshcoord, meshfwd and meshctl;
#   2. starts meshcoord (SQLite) on a shared underlay switch and creates a network;
#   3. gives three nodes, each in its own network namespace, one invite code each: `meshctl join`
#      writes their mesh.yaml and key, and meshfwd registers, gets its addresses (IPv4 from the
#      network's CIDR, IPv6 derived from its key) and learns the others from meshcoord: no
#      hand-written peer lists;
#   4. pings across the mesh (IPv4 and IPv6), runs a short transfer (iperf3, else python),
#      and prints `meshctl peers`, `meshctl status` of node a and meshcoord's view.
# Everything it creates (namespaces, processes, keys, configs, the database) is removed on exit,
# also on failure or Ctrl-C. Takes well under a minute once built.
#
#   ns a: meshfwd a          ns b: meshfwd b          ns c: meshfwd c
#   mfa0 10.100.0.x/24       mfb0 10.100.0.y/24       mfc0 10.100.0.z/24   (from meshcoord)
#        fdxx:...:/48             fdxx:...:/48             fdxx:...:/48    (from each key)
#   veth 192.0.2.1 ----+     veth 192.0.2.2 ----+     veth 192.0.2.3 ----+
#                      +------------------------+------- br0 (ns lan) ---+--- meshcoord 192.0.2.254:7080
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
if [[ -f build/build.ninja ]]; then
  meson setup --reconfigure build >/dev/null
else
  meson setup build >/dev/null
fi
ninja -C build tools/meshfwd tools/meshctl tools/meshcoord
build=$root/build
meshctl=$build/tools/meshctl

# The namespace helpers of the test suite: they remove namespaces, processes and files on exit.
. tests/netns/lib.sh
netns_require_root
api=127.0.0.1:7082 # each namespace has its own loopback, so every node uses the same port
ns3="mfc$$"
lan="mfl$$"
names=(a b c)
namespaces=("$ns1" "$ns2" "$ns3")
ncpu=$(nproc)

echo
echo "== 1. three namespaces on one switch"
netns_add "$lan"
ip -n "$lan" link add br0 type bridge
ip -n "$lan" link set br0 up
for i in 0 1 2; do
  ns=${namespaces[i]}
  netns_add "$ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip link add veth0 netns "$ns" type veth peer name "port$i" netns "$lan"
  ip -n "$lan" link set "port$i" master br0 up
  ip -n "$ns" addr add "192.0.2.$((i + 1))/24" dev veth0
  ip -n "$ns" link set veth0 up
  echo "   node ${names[i]}: namespace $ns, underlay 192.0.2.$((i + 1))"
done

echo
ip -n "$lan" addr add 192.0.2.254/24 dev br0
coord=http://192.0.2.254:7080
export MESHCOORD_ADMIN_TOKEN="demo-admin-token-$$-$RANDOM$RANDOM"

echo
echo "== 2. meshcoord on the switch (SQLite), and a network"
netns_spawn "$lan" meshcoord "$build/tools/meshcoord" --listen 192.0.2.254:7080 --db "sqlite:$tmp/meshcoord.db"
coord_up() { ip netns exec "$lan" "$meshctl" networks list --coord "$coord" >/dev/null 2>&1; }
wait_until 10 coord_up || fail "meshcoord did not start: $(cat "$tmp/meshcoord.log")"
ip netns exec "$lan" "$meshctl" networks create demo --id demo --cidr 10.100.0.0/24 --coord "$coord" | sed 's/^/   /'

echo
echo "== 3. each node joins with its own invite code, then starts"
for i in 0 1 2; do
  name=${names[i]}
  code=$(ip netns exec "$lan" "$meshctl" invite demo --hours 1 --coord "$coord" 2>/dev/null)
  echo "   invite for $name: ${code:0:40}..."
  "$meshctl" join "$code" -o "$tmp/$name.yaml" --name "$name" --device "mf${name}0" --api-listen "$api" | sed 's/^/   /'
done
for i in 0 1 2; do
  # One core each, spread over the machine's CPUs.
  netns_meshfwd "${namespaces[i]}" "${names[i]}" "$tmp/${names[i]}.yaml" "$((i % ncpu))" "$api"
  echo "   meshfwd ${names[i]} running (pid $spawned_pid, config $tmp/${names[i]}.yaml)"
done
echo "   config of node a (written by meshctl join; the invite is used once):"
sed 's/^/     | /' "$tmp/a.yaml" | cut -c1-110
coord_field() { status_json "$1" | "$py" -c "import json, sys; d = json.load(sys.stdin)['coordination']; print($2)"; }
settled() { [[ $(coord_field "$1" "d['registered'] and d['peers_online']") == 2 ]]; }
declare -A v4 v6
for i in 0 1 2; do
  ns=${namespaces[i]}
  wait_until 20 settled "$ns" || fail "node ${names[i]} did not register and learn its 2 peers: $(coord_field "$ns" d)"
  v4[${names[i]}]=$(coord_field "$ns" "d['addresses'][0].split('/')[0]")
  v6[${names[i]}]=$(coord_field "$ns" "d['addresses'][1].split('/')[0]")
  echo "   node ${names[i]}: registered, ${v4[${names[i]}]} and ${v6[${names[i]}]}, 2 peers from meshcoord"
done

echo
echo "== 4. ping across the mesh (the first packet of each pair waits for a handshake)"
mesh_ping() {
  local from=$1 ns=$2 to=$3 out
  for _ in 1 2 3 4 5; do
    if out=$(ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 "$to" 2>&1); then
      echo "   $from -> $to: $(grep -o '[0-9]* received.*loss' <<<"$out"), $(grep -o 'rtt .*' <<<"$out")"
      return 0
    fi
  done
  fail "$from -> $to: no reply (see the log: $tmp/meshfwd-$from.log)"
}
mesh_ping a "$ns1" "${v4[b]}"
mesh_ping a "$ns1" "${v4[c]}"
mesh_ping b "$ns2" "${v4[c]}"
mesh_ping c "$ns3" "${v6[a]}"

echo
if command -v iperf3 >/dev/null; then
  echo "== 5. iperf3 for 3 s, a -> c through the tunnel"
  netns_spawn "$ns3" iperf3-server iperf3 -s -1 -B "${v4[c]}"
  iperf_listening() { [[ -n $(ip netns exec "$ns3" ss -Hltn 'sport = :5201') ]]; }
  wait_until 5 iperf_listening || fail "iperf3 server did not start: $(cat "$tmp/iperf3-server.log")"
  ip netns exec "$ns1" timeout 20 iperf3 -c "${v4[c]}" -t 3 --connect-timeout 3000 |
    grep -E 'sender|receiver' | sed 's/^/   /'
else
  echo "== 5. 100 MiB over TCP, a -> c through the tunnel (python; install iperf3 for a rate test)"
  netns_spawn "$ns3" xfer-server timeout 20 python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(15)
c, _ = s.accept(); n = 0
while (b := c.recv(1 << 20)):
    n += len(b)
print("   c received %d bytes" % n)' "${v4[c]}"
  srv=$spawned_pid
  ip netns exec "$ns1" timeout 20 python3 -c '
import socket, sys, time
for _ in range(50):
    try:
        c = socket.create_connection((sys.argv[1], 5001), timeout=5); break
    except OSError:
        time.sleep(0.1)
t0 = time.monotonic(); buf = bytes(1 << 20)
for _ in range(100):
    c.sendall(buf)
c.shutdown(socket.SHUT_WR); c.recv(1)
print("   a sent 100 MiB in %.2f s" % (time.monotonic() - t0))' "${v4[c]}"
  wait "$srv" || fail "the receiver in c failed: $(cat "$tmp/xfer-server.log")"
  cat "$tmp/xfer-server.log"
fi

echo
echo "== 6. meshctl peers (node a; like wg show)"
ip netns exec "$ns1" "$meshctl" peers --api "$api" | sed 's/^/   /'
echo
echo "== 7. meshctl status (node a)"
ip netns exec "$ns1" "$meshctl" status --api "$api" | sed 's/^/   /'

echo
echo "== 8. what meshcoord knows (meshctl coord-peers demo)"
ip netns exec "$lan" "$meshctl" coord-peers demo --coord "$coord" | sed 's/^/   /'

echo
echo "== How to look at a running node (inside its namespace: ip netns exec NS ...):"
echo "   build/tools/meshctl peers [--json]           per peer: handshake, endpoint, transfer, lanes"
echo "   build/tools/meshctl status [--json]          per worker: packets, bytes, drop reasons; handshakes"
echo "   curl -s http://$api/metrics        the same counters for Prometheus"
echo "   meshfwd --log-level debug ...; kill -HUP PID reloads the config, SIGTERM stops the node"
echo
echo "demo done; removing the namespaces and processes"
