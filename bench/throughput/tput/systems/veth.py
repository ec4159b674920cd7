"""The bare underlay link: no tunnel, the kernel's veth path. The upper bound."""
from .base import System


class Veth(System):
    name = "veth"
    topologies = ("pair",)   # line3: B forwards nothing, so there is no bare A-C path
    has_processes = False
    description = "no tunnel; iperf3/ping over the veth link itself, its MTU set to the inner MTU"

    def settings_json(self, s):
        return {"mtu": s.mtu, "note": "veth MTU set to the inner MTU so packet sizes match the "
                "tunnels; kernel path, no userspace process (CPU/GB n/a)"}

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        topo.set_mtu(settings.mtu)
        return dict(topo.addr)
