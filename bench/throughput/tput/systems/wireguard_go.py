"""wireguard-go (userspace WireGuard, Go) configured with wg(8): the protocol meshfwd speaks.

Start-up (start_to_ping_ms): both processes are launched back to back, configured with wg set
(each with the other's endpoint and a persistent keepalive, so each initiates a handshake as
soon as its device is up), then both interfaces are set up at the same moment.
"""
import os

from ..util import REG, WG_PREFIX, RunnerError, run, run_together, wait_until, write_file
from .base import System, cmd_version, dpkg_version, tun_addr

PORT = 51820
KEEPALIVE = 25      # s, persistent keepalive: makes both ends initiate at start, as meshfwd's


class WireguardGo(System):
    name = "wireguard-go"
    packages = ("wireguard-go", "wireguard-tools")
    commands = ("wireguard-go", "wg")
    topologies = ("pair",)
    description = "wireguard-go -f in each namespace, keys from wg genkey, peers via wg set"

    def versions(self):
        return {"wireguard-go": cmd_version(["wireguard-go", "--version"]),
                "deb": dpkg_version("wireguard-go"), "wireguard-tools": dpkg_version("wireguard-tools")}

    def settings_json(self, s):
        return {"mtu": s.mtu, "cipher": "ChaCha20-Poly1305 (WireGuard, fixed)", "port": PORT,
                "cores": s.cores, "keys": "fresh wg genkey per run",
                "persistent_keepalive_s": KEEPALIVE,
                "start": "both wireguard-go launched back to back, configured, then both "
                "interfaces set up at once: both ends initiate (crossing handshake)"}

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        nodes = (topo.src, topo.dst)
        keys = {}
        for n in nodes:
            priv = run(["wg", "genkey"]).stdout.strip()
            pub = run(["wg", "pubkey"], input=priv + "\n").stdout.strip()
            kf = write_file(os.path.join(self.node_dir(n), "private.key"), priv + "\n", 0o600)
            keys[n] = (kf, pub)
        self.ifnames = {}
        socks = {}
        for n in nodes:
            ifname = "%s%s" % (WG_PREFIX, n)        # unique across namespaces: sockets are shared
            sock = "/var/run/wireguard/%s.sock" % ifname
            if os.path.exists(sock):
                raise RunnerError("%s already exists" % sock)
            REG.add_path(sock)
            self.ifnames[n], socks[n] = ifname, sock
        # Both ends start at once and both initiate (persistent keepalive): the crossing
        # handshake start_to_ping_ms measures. The devices come up together, last.
        self.mark_launch()
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="error")
        for n in nodes:
            self.spawn(n, ["wireguard-go", "-f", self.ifnames[n]], env=env)
        for n in nodes:
            if not wait_until(lambda: (self.check_alive(), os.path.exists(socks[n]))[1], 10, 0.01):
                raise RunnerError("wireguard-go: %s did not appear" % socks[n])
        for n in nodes:
            other = nodes[1] if n == nodes[0] else nodes[0]
            ns, ifname = topo.ns[n], self.ifnames[n]
            run(["wg", "set", ifname, "private-key", keys[n][0], "listen-port", str(PORT),
                 "peer", keys[other][1], "endpoint", "%s:%d" % (topo.addr[other], PORT),
                 "persistent-keepalive", str(KEEPALIVE), "allowed-ips", "%s/32" % tun_addr(other)],
                ns=ns)
            run(["ip", "-n", ns, "addr", "add", tun_addr(n) + "/24", "dev", ifname])
            run(["ip", "-n", ns, "link", "set", ifname, "mtu", str(settings.mtu)])
        # up: wireguard-go binds its port and sends the first initiation (persistent keepalive)
        run_together([(["ip", "link", "set", self.ifnames[n], "up"], topo.ns[n]) for n in nodes])
        return {n: tun_addr(n) for n in nodes}
