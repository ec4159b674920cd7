#!/usr/bin/env bash
# The README's main command, as root on Debian 12. It
#   1. installs dependencies and builds meshfwd;
#   2. validates the shipped example config the way a node starts (`meshfwd --check`), creating
#      the node's key with --init-key in a temporary copy;
#   3. shows a real WireGuard exchange on this machine: wireguard-go in one network namespace,
#      meshctl in another, a Noise_IKpsk2 handshake and ICMP echo through the tunnel.
# Everything it creates is removed on exit. (The multi-node meshfwd demo mesh arrives with the
# data plane.)
#
#   ns "client"                                  ns "server"
#   meshctl ping 10.0.0.1  ---- veth ---------> wireguard-go  10.0.0.2
#                      192.0.2.1/24    192.0.2.2/24, UDP 51820
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
meshfwd=$root/build/tools/meshfwd
meshctl=$root/build/tools/meshctl

echo
echo "== 1. meshfwd --check on examples/mesh.yaml"
cfgdir=$(mktemp -d /tmp/meshfwd-demo.XXXXXX)
cp examples/mesh.yaml "$cfgdir/"
TURN_USER=demo TURN_PASS=demo "$meshfwd" --check --init-key -c "$cfgdir/mesh.yaml"
echo "node key $cfgdir/a.key: mode $(stat -c %a "$cfgdir/a.key"), public key $("$meshctl" pubkey <"$cfgdir/a.key")"
rm -rf "$cfgdir"

echo
echo "== 2. a WireGuard handshake and ping: meshctl -> wireguard-go, in network namespaces"
# The namespace helpers of the test suite: they remove namespaces, processes and files on exit.
. tests/netns/lib.sh
netns_require_root
umask 077
"$meshctl" genkey >"$tmp/client.key"
wg genkey >"$tmp/server.key"
netns_pair
wgif="wgdemo$$"
netns_wireguard_go "$ns2" "${wgif:0:15}"
wgif=${wgif:0:15}
n2 wg set "$wgif" private-key "$tmp/server.key" listen-port 51820 \
   peer "$("$meshctl" pubkey <"$tmp/client.key")" allowed-ips 10.0.0.1/32
n2 ip addr add 10.0.0.2/24 dev "$wgif"
n2 ip link set "$wgif" up
n1 "$meshctl" ping --private-key-file "$tmp/client.key" --address 10.0.0.1 \
   --peer-key "$(wg pubkey <"$tmp/server.key")" --endpoint 192.0.2.2:51820 --count 3 --interval 200ms 10.0.0.2
echo
echo "== wireguard-go's view (wg show):"
n2 wg show "$wgif"
