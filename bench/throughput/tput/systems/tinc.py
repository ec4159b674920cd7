"""tinc 1.0 (Debian 12 ships 1.0.36; no 1.1, so no ChaCha20-Poly1305): router mode, TUN device.

Cipher: tinc 1.0's default (Blowfish-CBC with HMAC-SHA1 truncated to 4 bytes) -- the only
choice that is not a weakened or unauthenticated setup; recorded in the JSON settings.
pair : A ConnectTo B and B ConnectTo A.
line3: A and C ConnectTo B (and B to both) and are marked IndirectData, so their packets go
       through B, which forwards them inside tinc (Forwarding = internal) -- tinc's native
       relaying.
Both ends of every link ConnectTo the other, as both WireGuard ends initiate: with one side
connecting, a ConnectTo that races the other daemon's listen() is refused and retried 5 s
later, which start_to_ping_ms would report as tinc's start-up.
"""
import os

from ..topology import endpoint_of
from ..util import RunnerError, run, write_file
from .base import System, cmd_version, dpkg_version, tun_addr

PORT = 655


class Tinc(System):
    name = "tinc"
    packages = ("tinc",)
    commands = ("tincd",)
    topologies = ("pair", "line3")
    description = "tincd 1.0 -D in router mode, RSA keys from tincd -K per run"

    def versions(self):
        return {"tincd": cmd_version(["tincd", "--version"]), "deb": dpkg_version("tinc")}

    def settings_json(self, s):
        return {"mtu": s.mtu, "cipher": "tinc 1.0 default: Blowfish-CBC + HMAC-SHA1 (4-byte MAC); "
                "ChaCha20-Poly1305 needs tinc 1.1, which Debian 12 does not ship",
                "mode": "router", "port": PORT, "cores": s.cores, "keys": "tincd -K 2048 per run",
                "line3": "A,C ConnectTo B with IndirectData = yes: relayed by B's tincd",
                "start": "every node launched back to back; both ends of each link ConnectTo "
                "the other"}

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        nodes = topo.nodes
        dirs = {n: self.node_dir(n) for n in nodes}
        pubs = {}
        for n in nodes:
            d = dirs[n]
            os.makedirs(os.path.join(d, "hosts"), exist_ok=True)
            hub = topo.relay or topo.dst
            connect = [o for o in nodes if o != n] if n == hub else [hub]
            write_file(os.path.join(d, "tinc.conf"), "\n".join(
                ["Name = %s" % n, "Mode = router", "DeviceType = tun", "Device = /dev/net/tun",
                 "Interface = tinc0", "AddressFamily = ipv4", "Port = %d" % PORT,
                 "PrivateKeyFile = %s" % os.path.join(d, "rsa_key.priv"),
                 "PingTimeout = 5"] + ["ConnectTo = %s" % c for c in connect]) + "\n")
            write_file(os.path.join(d, "tinc-up"), "#!/bin/sh\n"
                       "ip addr add %s/24 dev $INTERFACE\n"
                       "ip link set $INTERFACE mtu %d up\n" % (tun_addr(n), settings.mtu), 0o755)
            # key: private key file, public key appended to hosts/<n>
            write_file(os.path.join(d, "hosts", n), "")
            run(["tincd", "-c", d, "-K", "2048"], input="\n\n", timeout=60)
            with open(os.path.join(d, "hosts", n)) as f:
                pubs[n] = f.read()
            if "BEGIN RSA PUBLIC KEY" not in pubs[n]:
                raise RunnerError("tincd -K wrote no public key to %s/hosts/%s" % (d, n))
        for n in nodes:
            for o in nodes:
                body = ["Address = %s" % endpoint_of(topo, o, n), "Port = %d" % PORT,
                        "Subnet = %s/32" % tun_addr(o)]
                if topo.relay and o != topo.relay:
                    body.append("IndirectData = yes")
                write_file(os.path.join(dirs[n], "hosts", o), "\n".join(body) + "\n" + pubs[o])
        self.mark_launch()       # every node back to back: start_to_ping_ms
        for n in nodes:
            self.spawn(n, ["tincd", "-c", dirs[n], "-D", "-d1",
                           "--pidfile=%s" % os.path.join(dirs[n], "tinc.pid")])
        for n in nodes:
            self.wait_link_up(n, "tinc0")
        return {n: tun_addr(n) for n in nodes}
