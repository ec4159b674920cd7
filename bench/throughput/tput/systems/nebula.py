"""Nebula (Slack's overlay, Go): certificates from nebula-cert, cipher chachapoly.

pair : static_host_map only, no lighthouse.
line3: B is lighthouse and relay (am_relay); A and C know only B and name it as their relay,
       so A reaches C through B's relay (Nebula >= 1.6).
"""
import os

from ..topology import endpoint_of
from ..util import run, write_file
from .base import System, cmd_version, dpkg_version, tun_addr

PORT = 4242


class Nebula(System):
    name = "nebula"
    packages = ("nebula",)
    commands = ("nebula", "nebula-cert")
    topologies = ("pair", "line3")
    description = "nebula with a fresh CA per run, cipher chachapoly, allow-all firewall"

    def versions(self):
        return {"nebula": cmd_version(["nebula", "-version"]), "deb": dpkg_version("nebula")}

    def settings_json(self, s):
        return {"mtu": s.mtu, "cipher": "chachapoly", "port": PORT, "cores": s.cores,
                "routines": 1, "firewall": "allow any in/out",
                "line3": "B lighthouse + am_relay, A/C use_relays via B",
                "keys": "fresh nebula-cert ca + sign per run"}

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        nodes = topo.nodes
        cadir = self.node_dir("ca")
        ca_crt, ca_key = os.path.join(cadir, "ca.crt"), os.path.join(cadir, "ca.key")
        run(["nebula-cert", "ca", "-name", "meshfwd-bench", "-duration", "24h",
             "-out-crt", ca_crt, "-out-key", ca_key])
        paths = {}
        for n in nodes:
            d = self.node_dir(n)
            crt, key = os.path.join(d, "host.crt"), os.path.join(d, "host.key")
            run(["nebula-cert", "sign", "-name", n, "-ip", tun_addr(n) + "/24", "-ca-crt", ca_crt,
                 "-ca-key", ca_key, "-out-crt", crt, "-out-key", key])
            cfg = self._config(topo, n, ca_crt, crt, key, settings)
            paths[n] = write_file(os.path.join(d, "config.yml"), cfg)
        self.mark_launch()       # every node back to back: start_to_ping_ms
        for n in nodes:
            self.spawn(n, ["nebula", "-config", paths[n]])
        for n in nodes:
            self.wait_link_up(n, "neb0")
        return {n: tun_addr(n) for n in nodes}

    def _config(self, topo, n, ca, crt, key, s):
        relay = topo.relay
        lines = ["pki:", "  ca: %s" % ca, "  cert: %s" % crt, "  key: %s" % key]
        if relay is None:
            others = [o for o in topo.nodes if o != n]
            hosts = {o: endpoint_of(topo, o, n) for o in others}
            lighthouse = ["lighthouse:", "  am_lighthouse: false", "  interval: 60", "  hosts: []"]
            relay_cfg = ["relay:", "  am_relay: false", "  use_relays: false"]
        elif n == relay:
            hosts = {}
            lighthouse = ["lighthouse:", "  am_lighthouse: true", "  interval: 60"]
            relay_cfg = ["relay:", "  am_relay: true", "  use_relays: true"]
        else:
            hosts = {relay: endpoint_of(topo, relay, n)}
            lighthouse = ["lighthouse:", "  am_lighthouse: false", "  interval: 10",
                          "  hosts:", '    - "%s"' % tun_addr(relay)]
            relay_cfg = ["relay:", "  am_relay: false", "  use_relays: true",
                         "  relays:", '    - "%s"' % tun_addr(relay)]
        lines.append("static_host_map:" + ("" if hosts else " {}"))
        for o, ep in hosts.items():
            lines.append('  "%s": ["%s:%d"]' % (tun_addr(o), ep, PORT))
        lines += lighthouse + relay_cfg
        lines += [
            "listen:", "  host: 0.0.0.0", "  port: %d" % PORT,
            "punchy:", "  punch: false",
            "cipher: chachapoly",
            "tun:", "  disabled: false", "  dev: neb0", "  drop_local_broadcast: false",
            "  drop_multicast: false", "  tx_queue: 500", "  mtu: %d" % s.mtu,
            "logging:", "  level: info", "  format: text",
            "firewall:", "  outbound:", "    - port: any", "      proto: any", "      host: any",
            "  inbound:", "    - port: any", "      proto: any", "      host: any",
        ]
        return "\n".join(lines) + "\n"
