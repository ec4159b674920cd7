"""meshfwd, this project's data plane: `build/tools/meshfwd --cores LIST -c mesh.yaml`.

Complete except for what depends on the data plane itself: it builds meshfwd when the binary
is missing (meson setup + ninja at the repo root, unless --no-build), writes one mesh.yaml per
node, generates keys with `build/tools/meshctl genkey|pubkey` (or `wg genkey|pubkey`, which are
byte-identical, while meshctl does not exist yet), starts meshfwd in every
namespace back to back (each peer with an endpoint has a persistent keepalive, so both ends of a
link initiate at once: the start-up that start_to_ping_ms measures) and waits (bounded) for its
TUN interface. A meshfwd that exits during start-up (e.g. "no data plane yet") makes the
system "unavailable: <its message>" -- never a number.
"""
import os
import shutil
import subprocess

from ..topology import endpoint_of
from ..util import RunnerError, Unavailable, log, run, tail, wait_until, write_file
from .base import System, cmd_version, tun_addr

PORT = 51820
API_PORT = 7082
IFNAME = "mfw0"
START_TIMEOUT = 15.0
KEEPALIVE = 25          # s, peers[].persistent_keepalive on peers with an endpoint


class Meshfwd(System):
    name = "meshfwd"
    packages = ("wireguard-tools",)     # wg genkey/pubkey as a fallback for meshctl
    commands = ()
    topologies = ("pair", "line3")
    description = "meshfwd --cores LIST -c mesh.yaml per namespace"

    def _bin(self, tool):
        return os.path.join(self.ctx.build_dir, "tools", tool)

    def prepare(self):
        exe = self._bin("meshfwd")
        if not os.access(exe, os.X_OK):
            if self.ctx.no_build:
                raise Unavailable("%s not built (--no-build)" % exe)
            self._build()
            if not os.access(exe, os.X_OK):
                raise Unavailable("%s not built: the build has no meshfwd target yet" % exe)
        if not os.access(self._bin("meshctl"), os.X_OK) and not shutil.which("wg"):
            raise Unavailable("no key generator: neither %s nor wg" % self._bin("meshctl"))

    def _build(self):
        root, bdir = self.ctx.repo_root, self.ctx.build_dir
        blog = os.path.join(self.ctx.logdir, "meshfwd-build.log")
        steps = []
        if not os.path.exists(os.path.join(bdir, "build.ninja")):
            steps.append(["meson", "setup", bdir])
        steps.append(["ninja", "-C", bdir])
        for argv in steps:
            log("building meshfwd: %s (log: %s)" % (" ".join(argv), blog))
            with open(blog, "ab") as out:
                try:
                    rc = subprocess.run(argv, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                        timeout=3600).returncode
                except FileNotFoundError:
                    raise Unavailable("cannot build meshfwd: %s not installed" % argv[0])
                except subprocess.TimeoutExpired:
                    raise Unavailable("meshfwd build timed out (see %s)" % blog)
            if rc != 0:
                raise Unavailable("meshfwd build failed: %s (see %s)" % (
                    " | ".join(tail(blog, 2)), blog))

    def versions(self):
        return {"meshfwd": cmd_version([self._bin("meshfwd"), "--version"])}

    def settings_json(self, s):
        return {"mtu": s.mtu, "cipher": "ChaCha20-Poly1305 (WireGuard)", "port": PORT,
                "cores": s.cores or self.ctx.cpus_allowed, "dataplane.poll": "adaptive",
                "keys": "fresh meshctl genkey (or wg genkey) per run",
                "persistent_keepalive_s": KEEPALIVE,
                "start": "every node launched back to back; peers with an endpoint have a "
                "persistent keepalive, so both ends initiate at start (crossing handshake)"}

    def _keypair(self):
        meshctl = self._bin("meshctl")
        gen = [meshctl, "genkey"] if os.access(meshctl, os.X_OK) else ["wg", "genkey"]
        pub = [meshctl, "pubkey"] if os.access(meshctl, os.X_OK) else ["wg", "pubkey"]
        priv = run(gen).stdout.strip()
        return priv, run(pub, input=priv + "\n").stdout.strip()

    def mesh_yaml(self, topo, n, keyfile, pubs, settings, api_port):
        """The node's mesh.yaml (schema of shared/DESIGN.md, 'Configuration')."""
        out = ["node:", "  name: %s" % n, "  private_key_file: %s" % keyfile,
               "  listen_port: %d" % PORT, "  address: %s/24" % tun_addr(n), "peers:"]
        for o in topo.nodes:
            if o == n:
                continue
            direct = topo.relay is None or topo.relay in (n, o)
            out.append("  - public_key: %s" % pubs[o])
            if direct:   # line3: A and C have no underlay path; meshfwd routes via B
                out.append("    endpoint: %s:%d" % (endpoint_of(topo, o, n), PORT))
                # both ends initiate at start (a crossing handshake), as in a real mesh
                out.append("    persistent_keepalive: %ds" % KEEPALIVE)
            out.append("    allowed_ips: [%s/32]" % tun_addr(o))
            out.append("    meshfwd: true    # the other node runs meshfwd too: lanes")
        out += ["mesh:", "  device:", "    type: tun", "    name: %s" % IFNAME,
                "    mtu: %d" % settings.mtu,
                "dataplane:", "  poll: adaptive",
                "api:", "  listen: 127.0.0.1:%d" % api_port]
        return "\n".join(out) + "\n"

    def setup(self, topo, settings):
        self.topo, self.settings = topo, settings
        keys = {n: self._keypair() for n in topo.nodes}
        cores = settings.cores or self.ctx.cpus_allowed
        cfgs = {}
        for i, n in enumerate(topo.nodes):
            d = self.node_dir(n)
            kf = write_file(os.path.join(d, "private.key"), keys[n][0] + "\n", 0o600)
            cfgs[n] = write_file(os.path.join(d, "mesh.yaml"), self.mesh_yaml(
                topo, n, kf, {o: keys[o][1] for o in topo.nodes}, settings, API_PORT + i))
            with open(os.path.join(self.ctx.logdir, "meshfwd-%s-%s.mesh.yaml" % (self.ctx.tag, n)),
                      "w") as f:                   # kept for debugging (the key stays in workdir)
                f.write(open(cfgs[n]).read())
        # every node launched back to back, none waiting for another: start_to_ping_ms
        self.mark_launch()
        procs = {}
        for n in topo.nodes:
            # meshfwd pins its own workers with --cores; no taskset around it.
            procs[n] = self.spawn(n, [self._bin("meshfwd"), "--cores", cores, "-c", cfgs[n]],
                                  cwd=self.node_dir(n), pin=False)
        for n, p in procs.items():
            ns = topo.ns[n]

            def ready():
                if p.poll() is not None:
                    return True
                cp = run(["ip", "-n", ns, "-o", "link", "show", "dev", IFNAME], check=False)
                return cp.returncode == 0 and ("<UP" in cp.stdout or ",UP" in cp.stdout)
            wait_until(ready, START_TIMEOUT, 0.1)
            if p.poll() is not None:
                msg = " | ".join(tail(self.log_path(n), 2)) or "exit status %d" % p.returncode
                raise Unavailable(msg)
            cp = run(["ip", "-n", ns, "-o", "link", "show", "dev", IFNAME], check=False)
            if cp.returncode != 0 or not ("<UP" in cp.stdout or ",UP" in cp.stdout):
                raise RunnerError("meshfwd is running on %s but %s is not up after %ss" % (
                    n, IFNAME, START_TIMEOUT))
        return {n: tun_addr(n) for n in topo.nodes}
