"""wireguard-go (userspace WireGuard, Go) configured with wg(8): the protocol meshfwd speaks."""
import os

from ..util import REG, WG_PREFIX, RunnerError, run, wait_until, write_file
from .base import System, cmd_version, dpkg_version, tun_addr

PORT = 51820


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
                "cores": s.cores, "keys": "fresh wg genkey per run"}

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
        for n in nodes:
            ifname = "%s%s" % (WG_PREFIX, n)        # unique across namespaces: sockets are shared
            sock = "/var/run/wireguard/%s.sock" % ifname
            if os.path.exists(sock):
                raise RunnerError("%s already exists" % sock)
            REG.add_path(sock)
            env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="error")
            self.spawn(n, ["wireguard-go", "-f", ifname], env=env)
            if not wait_until(lambda: (self.check_alive(), os.path.exists(sock))[1], 10, 0.05):
                raise RunnerError("wireguard-go: %s did not appear" % sock)
            self.ifnames[n] = ifname
        for n in nodes:
            other = nodes[1] if n == nodes[0] else nodes[0]
            ns, ifname = topo.ns[n], self.ifnames[n]
            run(["wg", "set", ifname, "private-key", keys[n][0], "listen-port", str(PORT),
                 "peer", keys[other][1], "endpoint", "%s:%d" % (topo.addr[other], PORT),
                 "allowed-ips", "%s/32" % tun_addr(other)], ns=ns)
            run(["ip", "-n", ns, "addr", "add", tun_addr(n) + "/24", "dev", ifname])
            run(["ip", "-n", ns, "link", "set", ifname, "mtu", str(settings.mtu), "up"])
        return {n: tun_addr(n) for n in nodes}
