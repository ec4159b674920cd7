"""The bare underlay link: no tunnel, the kernel's veth path. The upper bound."""
from .base import System


class Veth(System):
    name = "veth"
    topologies = ("pair",)   # line3: B forwards nothing, so there is no bare A-C path
    has_processes = False
    description = "no tunnel; iperf3/ping over the veth link itself, its MTU set to the inner MTU"

    def settings_json(self, s):
        return {"mtu": s.mtu, "note": "veth MTU set to the inner MTU so packet sizes match the "
                "tunnels; kernel path, no userspace process (CPU/GB n/a)",
                "start": "nothing to start: the link is up before the launch mark, so "
                "start_to_ping_ms is the probe's own floor (signal, first send, ARP, one RTT)"}

    def probe_target(self, topo):
        return topo.addr[topo.dst]

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        # Not flapped down/up: a probe sent before the far end has carrier waits for the ARP
        # retry (1 s) -- a kernel artefact, not a start-up cost.
        topo.set_mtu(settings.mtu)
        self.mark_launch()
        return dict(topo.addr)
