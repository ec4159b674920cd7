"""The interface every measured system implements.

A system is one VPN (or the bare link) that the runner can set up between the end nodes of
a topology. The runner calls, per repetition:

    prepare()                      once per run: check binaries (raise Unavailable), build
    setup(topo, settings) -> {node: tunnel address}   start it on every node of topo; calls
                                   mark_launch() right before launching the daemons of every
                                   node back to back (keys and configs are written before)
    pids()                         PIDs whose CPU time counts as "the VPN" (both sides)
    teardown()                     stop what setup() started (the runner also kills leftovers)

Class attributes declare what the runner needs to know up front: the Debian packages to
install, the executables they provide, the topologies the system supports (anything else
is reported "n/a").
"""
import os
import subprocess
import time

from ..util import REG, RunnerError, Unavailable, run, tail, wait_until

TUN_NET = "10.77.0"          # tunnel addresses: a=.1, b=.2, c=.3, prefix /24
NODE_INDEX = {"a": 1, "b": 2, "c": 3}


def tun_addr(node):
    return "%s.%d" % (TUN_NET, NODE_INDEX[node])


class Settings:
    """Equivalent settings applied to every system."""

    def __init__(self, mtu, cores):
        self.mtu = mtu            # inner (tunnel) MTU
        self.cores = cores        # taskset list for VPN processes and iperf3, or None


class Context:
    def __init__(self, workdir, logdir, repo_root, build_dir, no_build, cpus_allowed):
        self.workdir = workdir      # temp dir for keys/configs, removed at exit
        self.logdir = logdir        # <out>/logs: daemon output, kept
        self.repo_root = repo_root
        self.build_dir = build_dir
        self.no_build = no_build
        self.cpus_allowed = cpus_allowed
        self.tag = "r0"             # current repetition, for log file names


class System:
    name = "?"
    packages = ()            # Debian packages providing `commands`
    commands = ()            # executables required on PATH
    topologies = ("pair",)   # topologies this system can measure
    has_processes = True     # False: no userspace process (CPU/GB not measurable)
    description = ""

    def __init__(self, ctx):
        self.ctx = ctx
        self._procs = []
        self.topo = None
        self.settings = None
        self.on_launch = None    # set by the runner: the start-up probe's go(t_launch)

    def mark_launch(self):
        """start_to_ping_ms counts from here. Call once in setup(), after keys and configs are
        written, right before the daemons of all nodes are launched back to back."""
        t = time.monotonic()
        if self.on_launch:
            self.on_launch(t)

    def probe_target(self, topo):
        """The address the start-up probe pings from topo.src: dst's tunnel address."""
        return tun_addr(topo.dst)

    # ---- interface -------------------------------------------------------------------
    def prepare(self):
        import shutil
        missing = [c for c in self.commands if not shutil.which(c)]
        if missing:
            raise Unavailable("not installed: %s (Debian: %s)" % (", ".join(missing),
                                                                   " ".join(self.packages)))

    def versions(self):
        return {}

    def settings_json(self, settings):
        return {}

    def setup(self, topo, settings):
        raise NotImplementedError

    def pids(self):
        return [p.pid for p, _ in self._procs if p.poll() is None]

    def teardown(self):
        for p, _ in reversed(self._procs):
            REG.stop(p)
        self._procs = []

    # ---- helpers for subclasses ------------------------------------------------------
    def node_dir(self, node):
        d = os.path.join(self.ctx.workdir, "%s-%s-%s" % (self.name, self.ctx.tag, node))
        os.makedirs(d, exist_ok=True)
        return d

    def log_path(self, node):
        return os.path.join(self.ctx.logdir, "%s-%s-%s.log" % (self.name, self.ctx.tag, node))

    def spawn(self, node, argv, env=None, cwd=None, pin=True):
        lp = self.log_path(node)
        p = REG.spawn(argv, ns=self.topo.ns[node], cores=self.settings.cores if pin else None,
                      log_path=lp, env=env, label="%s/%s" % (self.name, node), cwd=cwd)
        self._procs.append((p, node))
        return p

    def check_alive(self, what="start"):
        for p, node in self._procs:
            if p.poll() is not None:
                msg = " | ".join(tail(self.log_path(node), 3)) or "no output"
                raise RunnerError("%s on %s exited (rc %s) during %s: %s" % (
                    self.name, node, p.returncode, what, msg))

    def wait_link_up(self, node, ifname, timeout=10.0):
        ns = self.topo.ns[node]

        def up():
            self.check_alive("start")
            cp = run(["ip", "-n", ns, "-o", "link", "show", "dev", ifname], check=False)
            return cp.returncode == 0 and ("<UP" in cp.stdout or ",UP" in cp.stdout)
        if not wait_until(up, timeout, 0.1):
            raise RunnerError("%s: interface %s did not come up on %s within %ss" % (
                self.name, ifname, node, timeout))


def dpkg_version(pkg):
    try:
        cp = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                            text=True, timeout=10)
        return cp.stdout.strip() if cp.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def cmd_version(argv):
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        out = (cp.stdout + cp.stderr).strip().splitlines()
        return out[0].strip() if out else None
    except (OSError, subprocess.TimeoutExpired):
        return None
