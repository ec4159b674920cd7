#!/usr/bin/env bash
# The README's first command, as root on Debian 12. It
#   1. installs dependencies (scripts/install-deps.sh) and builds meshfwd and meshctl;
#   2. starts three meshfwd nodes, each in its own network namespace, as a full mesh (every node
#      lists the other two as peers) over a shared underlay switch;
#   3. pings across the mesh (IPv4 and IPv6), runs a short transfer (iperf3, else python),
#      and prints `meshctl peers` and `meshctl status` of node a.
# Everything it creates (namespaces, processes, keys, configs) is removed on exit, also on
# failure or Ctrl-C. Takes well under a minute once built.
#
#   ns a: meshfwd a          ns b: meshfwd b          ns c: meshfwd c
#   mfa0 10.100.0.1/24       mfb0 10.100.0.2/24       mfc0 10.100.0.3/24
#        fd00:100::1/64           fd00:100::2/64           fd00:100::3/64
#   veth 192.0.2.1 ----+     veth 192.0.2.2 ----+     veth 192.0.2.3 ----+
#                      +------------------------+------- br0 (ns lan) ---+
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh
if [[ -f build/build.ninja ]]; then
  meson setup --reconfigure build >/dev/null
else
  meson setup build >/dev/null
fi
ninja -C build tools/meshfwd tools/meshctl
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
echo "== 2. keys, configs (a full mesh) and three meshfwd processes"
declare -A pub
for name in "${names[@]}"; do
  meshfwd_key "$name"
  pub[$name]=$pubkey
done
for i in 0 1 2; do
  name=${names[i]}
  {
    cat <<EOF
node:
  name: $name
  private_key_file: $name.key
  listen_port: 51820
  address: [10.100.0.$((i + 1))/24, fd00:100::$((i + 1))/64]
mesh:
  device: {type: tun, name: mf${name}0, mtu: 1420}
dataplane: {poll: adaptive, batch: 64, crypto: auto}
api: {listen: $api}
peers:
EOF
    for j in 0 1 2; do
      ((j != i)) || continue
      cat <<EOF
  - public_key: "${pub[${names[j]}]}"
    endpoint: 192.0.2.$((j + 1)):51820
    allowed_ips: [10.100.0.$((j + 1))/32, fd00:100::$((j + 1))/128]
    persistent_keepalive: 25s
    meshfwd: true
EOF
    done
  } >"$tmp/$name.yaml"
done
for i in 0 1 2; do
  # One core each, spread over the machine's CPUs.
  netns_meshfwd "${namespaces[i]}" "${names[i]}" "$tmp/${names[i]}.yaml" "$((i % ncpu))" "$api"
  echo "   meshfwd ${names[i]} running (pid $spawned_pid, config $tmp/${names[i]}.yaml)"
done
echo "   config of node a:"
sed 's/^/     | /' "$tmp/a.yaml"

echo
echo "== 3. ping across the mesh (the first packet of each pair waits for a handshake)"
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
mesh_ping a "$ns1" 10.100.0.2
mesh_ping a "$ns1" 10.100.0.3
mesh_ping b "$ns2" 10.100.0.3
mesh_ping c "$ns3" fd00:100::1

echo
if command -v iperf3 >/dev/null; then
  echo "== 4. iperf3 for 3 s, a -> c through the tunnel"
  netns_spawn "$ns3" iperf3-server iperf3 -s -1 -B 10.100.0.3
  iperf_listening() { [[ -n $(ip netns exec "$ns3" ss -Hltn 'sport = :5201') ]]; }
  wait_until 5 iperf_listening || fail "iperf3 server did not start: $(cat "$tmp/iperf3-server.log")"
  ip netns exec "$ns1" timeout 20 iperf3 -c 10.100.0.3 -t 3 --connect-timeout 3000 |
    grep -E 'sender|receiver' | sed 's/^/   /'
else
  echo "== 4. 100 MiB over TCP, a -> c through the tunnel (python; install iperf3 for a rate test)"
  netns_spawn "$ns3" xfer-server timeout 20 python3 -c '
import socket
s = socket.socket(); s.bind(("10.100.0.3", 5001)); s.listen(1); s.settimeout(15)
c, _ = s.accept(); n = 0
while (b := c.recv(1 << 20)):
    n += len(b)
print("   c received %d bytes" % n)'
  srv=$spawned_pid
  ip netns exec "$ns1" timeout 20 python3 -c '
import socket, time
for _ in range(50):
    try:
        c = socket.create_connection(("10.100.0.3", 5001), timeout=5); break
    except OSError:
        time.sleep(0.1)
t0 = time.monotonic(); buf = bytes(1 << 20)
for _ in range(100):
    c.sendall(buf)
c.shutdown(socket.SHUT_WR); c.recv(1)
print("   a sent 100 MiB in %.2f s" % (time.monotonic() - t0))'
  wait "$srv" || fail "the receiver in c failed: $(cat "$tmp/xfer-server.log")"
  cat "$tmp/xfer-server.log"
fi

echo
echo "== 5. meshctl peers (node a; like wg show)"
ip netns exec "$ns1" "$meshctl" peers --api "$api" | sed 's/^/   /'
echo
echo "== 6. meshctl status (node a)"
ip netns exec "$ns1" "$meshctl" status --api "$api" | sed 's/^/   /'

echo
echo "== How to look at a running node (inside its namespace: ip netns exec NS ...):"
echo "   build/tools/meshctl peers [--json]           per peer: handshake, endpoint, transfer, lanes"
echo "   build/tools/meshctl status [--json]          per worker: packets, bytes, drop reasons; handshakes"
echo "   curl -s http://$api/metrics        the same counters for Prometheus"
echo "   meshfwd --log-level debug ...; kill -HUP PID reloads the config, SIGTERM stops the node"
echo
echo "demo done; removing the namespaces and processes"
