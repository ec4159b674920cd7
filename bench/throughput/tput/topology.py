"""Underlay topologies built from network namespaces and veth links.

pair : A ==veth== B                          A 192.0.2.1/24     B 192.0.2.2/24
line3: A ==veth== B ==veth== C               A 192.0.2.1/24     B 192.0.2.2/24 + 198.51.100.2/24
                                             C 198.51.100.1/24
       B does not forward at IP level (net.ipv4.ip_forward=0 in its namespace) and A / C have
       no route to each other's subnet, so A and C can only talk through something running
       on B (a relay). setup() verifies that A cannot reach C.

Every veth is created directly inside its namespaces (nothing appears in the root
namespace) and disappears when the namespaces are deleted. --netem is applied to every
veth end (both directions of every link).
"""
import itertools
import shlex

from .util import PREFIX, REG, RunnerError, run

_counter = itertools.count(1)


class Topology:
    kind = None

    def __init__(self, mtu_underlay=1500, netem=None):
        self.n = next(_counter)
        self.netem = netem
        self.mtu_underlay = mtu_underlay
        self.ns = {}        # node name -> namespace
        self.addr = {}      # node name -> underlay IPv4 address (first one)
        self.ifaces = []    # (node, ifname) of every veth end
        self.created = False

    # node names in measurement order: traffic goes from src to dst
    src = "a"

    def _ns(self, node):
        name = "%s-%d%s" % (PREFIX, self.n, node)
        self.ns[node] = REG.add_ns(name)
        return name

    def _link(self, n1, if1, a1, n2, if2, a2, plen=24):
        ns1, ns2 = self.ns[n1], self.ns[n2]
        run(["ip", "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2,
             "netns", ns2])
        for ns, ifn, addr in ((ns1, if1, a1), (ns2, if2, a2)):
            run(["ip", "-n", ns, "addr", "add", "%s/%d" % (addr, plen), "dev", ifn])
            run(["ip", "-n", ns, "link", "set", ifn, "mtu", str(self.mtu_underlay), "up"])
        self.ifaces += [(n1, if1), (n2, if2)]

    def _apply_netem(self):
        if not self.netem:
            return
        for node, ifn in self.ifaces:
            cp = run(["tc", "-n", self.ns[node], "qdisc", "add", "dev", ifn, "root", "netem"]
                     + shlex.split(self.netem), check=False)
            if cp.returncode != 0:
                raise RunnerError("--netem %r: tc failed on %s: %s (does this kernel have "
                                  "sch_netem?)" % (self.netem, ifn, (cp.stderr or cp.stdout).strip()))

    def set_mtu(self, mtu):
        for node, ifn in self.ifaces:
            run(["ip", "-n", self.ns[node], "link", "set", ifn, "mtu", str(mtu)])

    def destroy(self):
        for ns in list(self.ns.values()):
            REG.del_ns(ns)
        self.ns = {}

    def describe(self):
        return {"kind": self.kind, "namespaces": dict(self.ns), "underlay": dict(self.addr),
                "netem": self.netem}


class Pair(Topology):
    kind = "pair"
    nodes = ("a", "b")
    dst = "b"
    relay = None

    def create(self):
        self._ns("a")
        self._ns("b")
        self._link("a", "v0", "192.0.2.1", "b", "v0", "192.0.2.2")
        self.addr = {"a": "192.0.2.1", "b": "192.0.2.2"}
        self._apply_netem()
        self.created = True
        return self


class Line3(Topology):
    kind = "line3"
    nodes = ("a", "b", "c")
    dst = "c"
    relay = "b"

    def create(self):
        for n in self.nodes:
            self._ns(n)
        self._link("a", "v0", "192.0.2.1", "b", "va", "192.0.2.2")
        self._link("c", "v0", "198.51.100.1", "b", "vc", "198.51.100.2")
        self.addr = {"a": "192.0.2.1", "b": "192.0.2.2", "c": "198.51.100.1"}
        self.addr_b_c = "198.51.100.2"    # B's address on C's side
        run(["ip", "netns", "exec", self.ns["b"], "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
        # A and C must not reach each other directly.
        cp = run(["ping", "-c", "1", "-W", "1", self.addr["c"]], ns=self.ns["a"], check=False)
        if cp.returncode == 0:
            raise RunnerError("line3: A reaches C directly; topology is wrong")
        self._apply_netem()
        self.created = True
        return self

    def endpoint_of(self, node, seen_from):
        """Underlay address of node as reachable from seen_from (B has one per side)."""
        if node == "b":
            return self.addr_b_c if seen_from == "c" else self.addr["b"]
        return self.addr[node]


def endpoint_of(topo, node, seen_from):
    if isinstance(topo, Line3):
        return topo.endpoint_of(node, seen_from)
    return topo.addr[node]


TOPOLOGIES = {"pair": Pair, "line3": Line3}
