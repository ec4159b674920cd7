"""Orchestrator: options, installs, the measurement rounds, cleanup, exit code.

Exit codes (explicit policy):
  0   every selected system was measured or reported unavailable / n/a
  1   a system that is available (installed, started) failed to carry traffic
  2   the runner itself broke (bad option, missing tool, a plumbing command failed,
      the kernel lacks something asked for such as netem)
  77  not root (network namespaces need it): nothing was done
  130 / 143  interrupted by SIGINT / SIGTERM (everything cleaned up first)
"""
import argparse
import datetime
import os
import re
import signal
import statistics
import sys
import tempfile
import time

from . import install, report, util
from .measure import METRICS, ORDER, Prober, StartProbe
from .systems import ORDER as SYS_ORDER, SYSTEMS
from .systems.base import Context, Settings, cmd_version, dpkg_version
from .topology import TOPOLOGIES
from .util import PREFIX, REG, Interrupted, RunnerError, SystemFailed, Unavailable, log, run

SCHEMA = "meshfwd-throughput/1"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))       # bench/throughput
REPO = os.path.dirname(os.path.dirname(HERE))


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/throughput/run", description=
        "End-to-end throughput of meshfwd and other VPNs in network namespaces.")
    ap.add_argument("--systems", help="comma list of %s (default: all; --quick: meshfwd,veth)"
                    % ",".join(SYS_ORDER))
    ap.add_argument("--duration", type=int, help="seconds per iperf3 test (default 10; --quick 3)")
    ap.add_argument("--reps", type=int, help="repetitions, medians reported (default 3; --quick 1)")
    ap.add_argument("--cores", help="CPU list (taskset syntax, e.g. 0 or 0,1) for the VPN "
                    "processes and iperf3 on both sides (default: not pinned)")
    ap.add_argument("--netem", help='netem arguments applied to every veth end, e.g. "delay 5ms loss 1%%"')
    ap.add_argument("--topology", choices=sorted(TOPOLOGIES), default="pair")
    ap.add_argument("--mtu", type=int, default=1420, help="inner (tunnel) MTU (default 1420)")
    ap.add_argument("--out", default="results", help="output directory (default results/)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 rep, 3 s, meshfwd+veth")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                    help="meson build dir holding tools/meshfwd (default <repo>/build)")
    ap.add_argument("--no-build", action="store_true", help="never build meshfwd; missing = unavailable")
    ap.add_argument("--no-install", action="store_true", help="never apt-get; missing = unavailable")
    ap.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    ap.add_argument("--clean-stale", action="store_true", help="first remove namespaces and "
                    "wireguard-go sockets left by runners that no longer exist (killed with SIGKILL)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every command")
    a = ap.parse_args(argv)
    a.systems = (a.systems or ("meshfwd,veth" if a.quick else ",".join(SYS_ORDER))).split(",")
    a.duration = a.duration if a.duration is not None else (3 if a.quick else 10)
    a.reps = a.reps if a.reps is not None else (1 if a.quick else 3)
    bad = [s for s in a.systems if s not in SYSTEMS]
    if bad:
        ap.error("unknown system(s) %s; known: %s" % (",".join(bad), ",".join(SYS_ORDER)))
    if len(set(a.systems)) != len(a.systems):
        ap.error("--systems lists a system twice")
    if not 1 <= a.duration <= 600:
        ap.error("--duration must be 1..600 seconds")
    if not 1 <= a.reps <= 50:
        ap.error("--reps must be 1..50")
    if not 576 <= a.mtu <= 8920:
        ap.error("--mtu must be 576..8920")
    if a.cores:
        if not re.fullmatch(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*", a.cores):
            ap.error("--cores: use taskset list syntax, e.g. 0 or 0,1 or 0-3")
        cpus = set()
        for part in a.cores.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
        if not cpus <= os.sched_getaffinity(0):
            ap.error("--cores %s: not all of these CPUs are available (allowed: %s)" % (
                a.cores, cpu_list(os.sched_getaffinity(0))))
    return a


def cpu_list(cpus):
    return ",".join(str(c) for c in sorted(cpus))


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    u = os.uname()
    return {"cpu_model": model, "cpus_online": os.cpu_count(),
            "cpus_allowed": sorted(os.sched_getaffinity(0)), "kernel": u.release,
            "machine": u.machine, "hostname": u.nodename, "loadavg_start": os.getloadavg(),
            "python": sys.version.split()[0]}


def clean_stale():
    cp = run(["ip", "netns", "list"], check=False)
    for line in cp.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^mfb(\d+)-", name)
        if m and int(m.group(1)) != os.getpid() and not os.path.exists("/proc/%s" % m.group(1)):
            log("removing stale namespace %s" % name)
            REG.del_ns(name)
    d = "/var/run/wireguard"
    for f in (os.listdir(d) if os.path.isdir(d) else []):
        m = re.match(r"^mfw(\d+)[a-c]\.sock$", f)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            log("removing stale socket %s/%s" % (d, f))
            os.unlink(os.path.join(d, f))


def measure_one(sysobj, args, settings, rep, out_logs):
    """One repetition of one system on a fresh topology. Returns (metrics, raw)."""
    topo_cls = TOPOLOGIES[args.topology]
    topo = topo_cls(mtu_underlay=max(1500, args.mtu + 80), netem=args.netem)
    prober = None
    probe = None
    try:
        topo.create()                                    # RunnerError here: runner broke
        # start_to_ping_ms: the probe waits in the source node; setup() signals it the moment
        # it launches the daemons of every node (System.mark_launch).
        probe = StartProbe(topo.ns[topo.src], sysobj.probe_target(topo),
                           os.path.join(out_logs, "startprobe-%s-r%d.json" % (sysobj.name, rep)))
        probe.start()
        sysobj.on_launch = probe.go
        try:
            t0 = time.monotonic()
            addrs = sysobj.setup(topo, settings)
            start_ms, start_raw = probe.result()         # bounded: the probe's own timeout
            prober = Prober(topo, addrs, settings, args.duration, sysobj.pids)
            prober.wait_reachable()
            setup_s = time.monotonic() - t0
            prober.start_server(os.path.join(out_logs, "iperf3-%s-r%d.log" % (sysobj.name, rep)))
            metrics, raw = prober.all()
            metrics["start_to_ping_ms"] = start_ms
            raw["start"] = start_raw
            raw["setup_s"] = setup_s
            raw["topology"] = topo.describe()
            raw["tunnel_addresses"] = addrs
            return metrics, raw
        except RunnerError as e:       # the system's own plumbing failed: it does not carry traffic
            raise SystemFailed(str(e))
    finally:
        sysobj.on_launch = None
        if probe:
            probe.stop()
        if prober:
            prober.stop_server()
        try:
            sysobj.teardown()
        finally:
            topo.destroy()


def run_all(args):
    started = datetime.datetime.now(datetime.timezone.utc)
    machine_info_start = machine_info()
    if os.geteuid() != 0:
        log("needs root (network namespaces); skipping")
        return 77
    util.VERBOSE = args.verbose
    if args.clean_stale:
        clean_stale()
    out = os.path.abspath(args.out)
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)

    classes = [SYSTEMS[s] for s in args.systems]
    missing = install.missing_packages(classes, chart=not args.no_chart)
    left = install.install(missing, enabled=not args.no_install)
    for cmd in install.BASE:
        if not util.shutil_which(cmd):
            raise RunnerError("%s is required (Debian: %s)" % (cmd, install.BASE[cmd]))

    workdir = REG.add_path(tempfile.mkdtemp(prefix=PREFIX + "-"))
    allowed = cpu_list(os.sched_getaffinity(0))
    ctx = Context(workdir, logs, REPO, os.path.abspath(args.build_dir), args.no_build, allowed)
    settings = Settings(args.mtu, args.cores)

    results, objs = {}, {}
    for cls in classes:
        obj = cls(ctx)
        objs[cls.name] = obj
        r = results[cls.name] = {"status": "ok", "reason": None, "description": cls.description,
                                 "versions": {}, "settings": obj.settings_json(settings),
                                 "samples": {m: [] for m in ORDER}, "raw": [], "median": {}}
        if args.topology not in cls.topologies:
            r["status"], r["reason"] = "n/a", "%s does not support topology %s (supports: %s)" % (
                cls.name, args.topology, ", ".join(cls.topologies))
            continue
        try:
            obj.prepare()
            r["versions"] = obj.versions()
        except Unavailable as e:
            r["status"], r["reason"] = "unavailable", str(e)
            log("%s unavailable: %s" % (cls.name, e))

    active = [n for n in args.systems if results[n]["status"] == "ok"]
    for rep in range(args.reps):
        # rotate the order each round so no system always runs first / last
        order = active[rep % len(active):] + active[:rep % len(active)] if active else []
        for name in order:
            r = results[name]
            if r["status"] != "ok":
                continue
            ctx.tag = "r%d" % (rep + 1)
            log("rep %d/%d: %s (%s, %ds per test)" % (rep + 1, args.reps, name, args.topology,
                                                       args.duration))
            try:
                metrics, raw = measure_one(objs[name], args, settings, rep + 1, logs)
            except Unavailable as e:
                r["status"], r["reason"] = "unavailable", str(e)
                log("%s unavailable: %s" % (name, e))
                continue
            except SystemFailed as e:
                r["status"], r["reason"] = "failed", str(e)
                log("%s FAILED: %s" % (name, e))
                continue
            raw["rep"] = rep + 1
            r["raw"].append(raw)
            for m in ORDER:
                r["samples"][m].append(metrics[m])
            log("  " + ", ".join("%s=%s" % (m, report.FMT[m] % metrics[m]) for m in ORDER
                                 if metrics[m] is not None))
    for name, r in results.items():
        if r["status"] == "ok":
            r["median"] = {m: (statistics.median([v for v in vals if v is not None])
                               if any(v is not None for v in vals) else None)
                           for m, vals in r["samples"].items()}

    ref, note = report.choose_reference(results)
    report.add_ratios(results, ref)
    text = report.table(results, ref, note, args.topology)
    print(text, end="")
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)

    failed = [n for n, r in results.items() if r["status"] == "failed"]
    code = 1 if failed else 0
    doc = {
        "schema": SCHEMA,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": ["bench/throughput/run"] + sys.argv[1:],
        "machine": dict(machine_info_start, loadavg_end=os.getloadavg()),
        "tools": {"iperf3": cmd_version(["iperf3", "--version"]), "iperf3_deb": dpkg_version("iperf3"),
                  "iproute2_deb": dpkg_version("iproute2")},
        "options": {"systems": args.systems, "duration_s": args.duration, "reps": args.reps,
                    "cores": args.cores, "netem": args.netem, "topology": args.topology,
                    "mtu": args.mtu, "quick": args.quick},
        "metrics": {m: {"unit": u, "better": b, "description": d} for m, (u, b, d) in METRICS.items()},
        "reference": ref, "reference_note": note,
        "systems": results,
        "packages_missing": left,
        "exit_code": code,
        "chart": None,
    }
    if not args.no_chart:
        try:
            doc["chart"] = os.path.basename(report.chart(
                results, ref, out, "%s, %s, %d x %ds, %s" % (args.topology, ",".join(args.systems),
                                                               args.reps, args.duration,
                                                               started.strftime("%Y-%m-%d"))))
        except Exception as e:   # a missing chart does not invalidate measurements: warn
            log("chart not drawn: %s" % e)
            doc["chart_error"] = str(e)
    report.write_json(os.path.join(out, "results.json"), doc)
    log("wrote %s/{results.json,table.txt%s}" % (out, ",chart.png" if doc["chart"] else ""))
    if failed:
        log("exit 1: available system(s) failed to carry traffic: %s" % ", ".join(failed))
    return code


def _on_signal(signum, frame):
    raise Interrupted(signum)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, _on_signal)
    code = 2
    try:
        code = run_all(args)
    except Interrupted as e:
        log("interrupted (signal %d): cleaning up" % e.signum)
        code = 128 + e.signum
    except RunnerError as e:
        log("runner error: %s" % e)
        code = 2
    finally:
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)           # cleanup must not be interrupted
        REG.cleanup()
    return code
