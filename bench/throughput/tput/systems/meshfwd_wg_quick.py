"""meshfwd-wg driven by wg-quick: `WG_QUICK_USERSPACE_IMPLEMENTATION=build/tools/meshfwd-wg
wg-quick up IFNAME.conf` in each namespace, from an ordinary wg-quick config (issue 16). The same
data plane as the `meshfwd` row, configured the way WireGuard users configure wireguard-go; the two
rows should match in one run. Plain WireGuard peers (no lanes): one UDP 5-tuple per direction.

Start-up: both wg-quick up launched back to back; each config has the other's endpoint and a
persistent keepalive, so both ends initiate. wg-quick falls back to the userspace implementation
only without the wireguard kernel module (otherwise this row is unavailable).
"""
import os

from ..util import REG, WG_PREFIX, RunnerError, Unavailable, run
from .base import System, cmd_version, tun_addr

PORT = 51820
KEEPALIVE = 25


class MeshfwdWgQuick(System):
    name = "meshfwd-wg-quick"
    packages = ("wireguard-tools",)
    commands = ("wg", "wg-quick")
    topologies = ("pair",)
    description = "wg-quick up with WG_QUICK_USERSPACE_IMPLEMENTATION=meshfwd-wg per namespace"

    def _bin(self):
        return os.path.join(self.ctx.build_dir, "tools", "meshfwd-wg")

    def prepare(self):
        if not os.access(self._bin(), os.X_OK):
            raise Unavailable("%s not built" % self._bin())
        if os.path.exists("/sys/module/wireguard"):
            raise Unavailable("wireguard kernel module loaded: wg-quick would not use meshfwd-wg")

    def versions(self):
        return {"meshfwd-wg": cmd_version([self._bin(), "--version"])}

    def settings_json(self, s):
        return {"mtu": s.mtu, "cipher": "ChaCha20-Poly1305 (WireGuard)", "port": PORT,
                "cores": s.cores or self.ctx.cpus_allowed, "keys": "fresh wg genkey per run",
                "persistent_keepalive_s": KEEPALIVE,
                "start": "both wg-quick up launched back to back, each with the other's endpoint"}

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        nodes = (topo.src, topo.dst)
        keys = {}
        for n in nodes:
            priv = run(["wg", "genkey"]).stdout.strip()
            keys[n] = (priv, run(["wg", "pubkey"], input=priv + "\n").stdout.strip())
        self.ifnames, self.confs = {}, {}
        for n in nodes:
            ifname = "%sq%s" % (WG_PREFIX, n)
            if len(ifname) > 15:
                ifname = ifname[-15:]
            sock = "/var/run/wireguard/%s.sock" % ifname
            if os.path.exists(sock):
                raise RunnerError("%s already exists" % sock)
            REG.add_path(sock)
            other = nodes[1] if n == nodes[0] else nodes[0]
            conf = os.path.join(self.node_dir(n), ifname + ".conf")
            with open(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write("[Interface]\nPrivateKey = %s\nAddress = %s/24\nListenPort = %d\nMTU = %d\n\n"
                        "[Peer]\nPublicKey = %s\nEndpoint = %s:%d\nAllowedIPs = %s/32\n"
                        "PersistentKeepalive = %d\n" % (
                            keys[n][0], tun_addr(n), PORT, settings.mtu, keys[other][1],
                            topo.addr[other], PORT, tun_addr(other), KEEPALIVE))
            self.ifnames[n], self.confs[n] = ifname, conf
        cores = settings.cores or self.ctx.cpus_allowed
        env = dict(os.environ, WG_QUICK_USERSPACE_IMPLEMENTATION=self._bin(), MESHFWD_CORES=cores)
        env.pop("LOG_LEVEL", None)   # set, meshfwd-wg keeps our pipes open in the background
        self.mark_launch()
        for n in nodes:
            cp = run(["wg-quick", "up", self.confs[n]], ns=topo.ns[n], env=env, check=False)
            if cp.returncode != 0:
                raise Unavailable("wg-quick up: %s" % (cp.stderr.strip().splitlines() or ["?"])[-1])
        return {n: tun_addr(n) for n in nodes}

    def pids(self):
        # meshfwd-wg runs in the background (wg-quick's way): find it by its socket.
        out = []
        for n, ifname in getattr(self, "ifnames", {}).items():
            cp = run(["ss", "-xlpn"], ns=self.topo.ns[n], check=False)
            for line in cp.stdout.splitlines():
                if "/%s.sock " % ifname in line and "pid=" in line:
                    out.append(int(line.split("pid=")[1].split(",")[0]))
        return out

    def teardown(self):
        # Deleting the interface ends meshfwd-wg and removes its socket (as wg-quick down does).
        for n, ifname in getattr(self, "ifnames", {}).items():
            run(["ip", "-n", self.topo.ns[n], "link", "del", ifname], check=False)
        self.ifnames = {}
        super().teardown()
