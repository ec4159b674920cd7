"""Installs missing peers from Debian 12: `apt-get update` once, only when something is
missing, then `apt-get install -y --no-install-recommends`. Nothing else is downloaded."""
import shutil
import subprocess

from .util import RunnerError, log

BASE = {"ip": "iproute2", "tc": "iproute2", "ss": "iproute2", "ping": "iputils-ping",
        "iperf3": "iperf3", "taskset": "util-linux"}
CHART = {"gnuplot": "gnuplot-nox"}


def missing_packages(systems, chart=True):
    """Debian packages to install: the base tools, the chart tool, and every package of a
    selected system one of whose commands is missing."""
    need = dict(BASE, **(CHART if chart else {}))
    pkgs = {pkg for cmd, pkg in need.items() if not shutil.which(cmd)}
    for cls in systems:
        cmds = list(cls.commands) + (["wg"] if "wireguard-tools" in cls.packages else [])
        if any(not shutil.which(c) for c in cmds):
            pkgs.update(cls.packages)
    return sorted(pkgs)


def install(pkgs, enabled=True):
    if not pkgs:
        return []
    if not enabled:
        log("missing Debian packages (not installing, --no-install): %s" % " ".join(pkgs))
        return pkgs
    log("installing Debian packages: %s" % " ".join(pkgs))
    if not shutil.which("apt-get"):
        raise RunnerError("apt-get not found; install by hand: %s" % " ".join(pkgs))
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for argv in (["apt-get", "update"],
                 ["apt-get", "install", "-y", "--no-install-recommends"] + pkgs):
        try:
            cp = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise RunnerError("%s timed out" % " ".join(argv[:2]))
        if cp.returncode != 0:
            raise RunnerError("%s failed:\n%s" % (" ".join(argv), cp.stderr.strip()[-1500:]))
    return []
