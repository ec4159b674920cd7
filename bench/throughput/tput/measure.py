"""The measurements: ping RTT, iperf3 TCP (1 and 4 streams, and 1 stream at MSS 536), iperf3
UDP with 64-byte and with MTU-sized datagrams, the VPN processes' CPU time per GB moved during
the TCP tests, and the time from launching both ends of the tunnel to the first ping answered.
Called from the runner's main thread only."""
import json
import math
import os
import re
import signal
import sys
import time

from .util import REG, RunnerError, SystemFailed, proc_cpu_seconds, run, wait_until

IPERF_PORT = 5201
UDP_LEN = 64
SMALL_MSS = 536               # the IPv4 default MSS: many small segments per byte moved
IPV4_UDP_HEADERS = 28         # 20 IPv4 + 8 UDP: the largest datagram is MTU - 28
PING_COUNT = 200
PING_INTERVAL = "0.01"
START_PROBE_INTERVAL = 0.02   # s between start-up probes: the resolution of start_to_ping_ms
START_PROBE_TIMEOUT = 30      # s after the launch, as wait_reachable
STARTPROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "startprobe.py")

METRICS = {
    # name: (unit, better, description)
    "tcp1_gbps": ("Gbit/s", "higher", "iperf3 TCP, 1 stream, receiver side"),
    "tcp4_gbps": ("Gbit/s", "higher", "iperf3 TCP, 4 streams (-P 4), receiver side"),
    "tcp1_mss536_gbps": ("Gbit/s", "higher", "iperf3 TCP, 1 stream, -M %d (small segments: many "
                         "packets per byte), receiver side" % SMALL_MSS),
    "udp64_kpps": ("kpps", "higher", "iperf3 UDP 64-byte payloads, -b 0: datagrams received per second"),
    "udp64_loss_pct": ("%", "lower", "iperf3 UDP 64-byte: datagrams lost (sent but not received)"),
    "udp_bulk_mbps": ("Mbit/s", "higher", "iperf3 UDP, -b 0, datagrams of inner MTU - %d bytes "
                      "(the largest that fits the tunnel unfragmented, IPv4): UDP payload received "
                      "per second" % IPV4_UDP_HEADERS),
    "udp_bulk_loss_pct": ("%", "lower", "iperf3 UDP MTU-sized: datagrams lost (sent but not received)"),
    "ping_avg_ms": ("ms", "lower", "ping RTT average, %d pings at %ss" % (PING_COUNT, PING_INTERVAL)),
    "ping_p99_ms": ("ms", "lower", "ping RTT 99th percentile (nearest rank)"),
    "cpu_s_per_gb": ("CPU s/GB", "lower", "utime+stime of the VPN processes on every node (both "
                     "ends; and the relay B on line3) during the two TCP tests, divided by the GB received"),
    "start_to_ping_ms": ("ms", "lower", "from launching the daemons of every node back to back "
                         "(both ends initiate where the system allows) to the first ICMP echo reply "
                         "across the tunnel; probes every %g s from the launch" % START_PROBE_INTERVAL),
}
ORDER = list(METRICS)


def p_nearest(values, q):
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


class StartProbe:
    """start_to_ping_ms: runs startprobe.py in the source node from before the system's setup.
    The system calls go() (via System.mark_launch) right before it launches its daemons; the
    probe pings from that instant and stops at the first reply."""

    def __init__(self, ns, dst, out_path):
        self.ns, self.dst, self.out = ns, dst, out_path
        self.proc = None
        self.t_launch = None

    def start(self):
        for stale in (self.out, self.out + ".ready", self.out + ".tmp"):   # an earlier run's
            if os.path.lexists(stale):
                os.unlink(stale)
        self.proc = REG.spawn([sys.executable, "-I", STARTPROBE, self.dst, str(START_PROBE_INTERVAL),
                               str(START_PROBE_TIMEOUT), self.out], ns=self.ns,
                              log_path=self.out + ".log", label="startprobe")

        def ready():
            if self.proc.poll() is not None:
                raise RunnerError("start-up probe exited (rc %s; see %s.log)" % (
                    self.proc.returncode, self.out))
            return os.path.exists(self.out + ".ready")
        if not wait_until(ready, 10, 0.02):
            raise RunnerError("start-up probe not ready after 10s (see %s.log)" % self.out)

    def go(self, t_launch):
        """Called once, at the launch: the probe's SIGUSR1 (it blocked the signal before ready)."""
        if self.t_launch is None and self.proc and self.proc.poll() is None:
            self.t_launch = t_launch
            os.kill(self.proc.pid, signal.SIGUSR1)

    def result(self):
        """(start_to_ping_ms or None, raw dict); SystemFailed when the probe got no reply.
        Bounded: the probe gives up on its own after START_PROBE_TIMEOUT from the launch;
        this waits that long at most, plus slack."""
        if self.t_launch is None:
            return None, {"error": "the system never marked its launch (System.mark_launch)"}
        left = self.t_launch + START_PROBE_TIMEOUT + 5 - time.monotonic()
        wait_until(lambda: os.path.exists(self.out), max(left, 0.1), 0.02)
        try:
            with open(self.out) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            return None, {"error": "no probe result: %s (see %s.log)" % (e, self.out)}
        raw = {"interval_s": doc.get("interval_s"), "probes_sent": doc.get("sent"),
               "send_errors": doc.get("send_errors"), "reply_seq": doc.get("reply_seq"),
               "go_delay_ms": (doc["t_go"] - self.t_launch) * 1e3 if "t_go" in doc else None}
        if doc.get("t_first_send_ok") is not None:
            # when the tunnel's route first existed in the source node (interface up)
            raw["route_up_ms"] = (doc["t_first_send_ok"] - self.t_launch) * 1e3
        if doc.get("t_reply") is None:
            # the probe pinged for START_PROBE_TIMEOUT from the launch: the tunnel carries nothing
            raise SystemFailed("start-up probe: %s of the launch" % doc.get("error", "no reply"))
        ms = (doc["t_reply"] - self.t_launch) * 1e3
        raw["start_to_ping_ms"] = ms
        raw["reply_probe_sent_ms"] = (doc["reply_probe_sent"] - self.t_launch) * 1e3
        return ms, raw

    def stop(self):
        if self.proc:
            REG.stop(self.proc)
            self.proc = None


class Prober:
    def __init__(self, topo, addrs, settings, duration, pids_fn):
        self.topo, self.addrs, self.settings = topo, addrs, settings
        self.duration = duration
        self.pids_fn = pids_fn
        self.src_ns, self.dst_ns = topo.ns[topo.src], topo.ns[topo.dst]
        self.dst = addrs[topo.dst]
        self.server = None

    def wait_reachable(self, timeout=30):
        """Bounded: one ping per second until the tunnel carries a packet."""
        ok = wait_until(lambda: run(["ping", "-c", "1", "-W", "1", self.dst], ns=self.src_ns,
                                    check=False, timeout=5).returncode == 0, timeout, 0.2)
        if not ok:
            raise SystemFailed("no ping reply from %s within %ss" % (self.dst, timeout))

    def start_server(self, log_path):
        self.server = REG.spawn(["iperf3", "-s", "-p", str(IPERF_PORT)], ns=self.dst_ns,
                                cores=self.settings.cores, log_path=log_path, label="iperf3 -s")

        def listening():
            if self.server.poll() is not None:
                raise RunnerError("iperf3 server exited (see %s)" % log_path)
            cp = run(["ss", "-Htln", "sport = :%d" % IPERF_PORT], ns=self.dst_ns, check=False)
            return bool(cp.stdout.strip())
        if not wait_until(listening, 10, 0.05):
            raise RunnerError("iperf3 server not listening after 10s")

    def stop_server(self):
        if self.server:
            REG.stop(self.server)
            self.server = None

    def ping(self):
        deadline = int(PING_COUNT * float(PING_INTERVAL)) + 10
        cp = run(["ping", "-n", "-i", PING_INTERVAL, "-c", str(PING_COUNT), "-W", "1",
                  "-w", str(deadline), self.dst], ns=self.src_ns, check=False, timeout=deadline + 10)
        rtts = [float(m) for m in re.findall(r"time=([0-9.]+) ms", cp.stdout)]
        if not rtts:
            raise SystemFailed("ping: no replies")
        return {"ping_avg_ms": sum(rtts) / len(rtts), "ping_p99_ms": p_nearest(rtts, 0.99),
                "ping_received": len(rtts), "ping_sent": PING_COUNT}

    def _iperf(self, extra):
        argv = ["iperf3", "-c", self.dst, "-p", str(IPERF_PORT), "-t", str(self.duration),
                "-J", "--connect-timeout", "3000"] + extra
        # one retry for a transient "server is busy" right after the previous test
        for attempt in range(2):
            cp = run(argv, ns=self.src_ns, cores=self.settings.cores, check=False,
                     timeout=self.duration + 30)
            try:
                res = json.loads(cp.stdout)
            except ValueError:
                res = {"error": (cp.stderr or cp.stdout).strip()[-500:] or "no output"}
            if "error" not in res:
                return res
            if "busy" not in str(res["error"]) or attempt:
                raise SystemFailed("iperf3 %s: %s" % (" ".join(extra), res["error"]))
            wait_until(lambda: False, 1.0)
        raise AssertionError

    def tcp(self, streams, mss=None):
        pids = self.pids_fn()
        before = {p: proc_cpu_seconds(p) for p in pids}
        res = self._iperf((["-P", str(streams)] if streams > 1 else []) +
                          (["-M", str(mss)] if mss else []))
        after = {p: proc_cpu_seconds(p) for p in pids}
        cpu = sum(after[p] - before[p] for p in pids
                  if before[p] is not None and after[p] is not None)
        rx = res["end"]["sum_received"]
        return {"gbps": rx["bits_per_second"] / 1e9, "bytes": rx["bytes"], "seconds": rx["seconds"],
                "retransmits": res["end"].get("sum_sent", {}).get("retransmits"),
                "vpn_cpu_s": cpu if pids else None, "vpn_pids": pids,
                "iperf_cpu": res["end"].get("cpu_utilization_percent"),
                "mss": res["start"].get("tcp_mss") or res["start"].get("tcp_mss_default")}

    def udp(self, length):
        res = self._iperf(["-u", "-l", str(length), "-b", "0"])
        # receiver side: sum_received (iperf3 >= 3.12); its lost count is the server's
        s = res["end"].get("sum_received") or res["end"]["sum"]
        received = s["packets"] - s["lost_packets"]
        if "bytes" in s and s.get("sender") is False:
            received = s["bytes"] // length
        secs = s["seconds"] or self.duration
        return {"datagram_bytes": length, "kpps": received / secs / 1e3,
                "mbps": received * length * 8 / secs / 1e6, "loss_pct": s["lost_percent"],
                "packets_sent": s["packets"], "packets_lost": s["lost_packets"],
                "packets_received": received, "seconds": secs}

    def all(self):
        """One repetition of every metric; returns (metrics, raw)."""
        raw = {"ping": self.ping()}
        raw["tcp1"] = self.tcp(1)
        raw["tcp4"] = self.tcp(4)
        raw["tcp1_mss536"] = self.tcp(1, mss=SMALL_MSS)
        raw["udp64"] = self.udp(UDP_LEN)
        raw["udp_bulk"] = self.udp(self.settings.mtu - IPV4_UDP_HEADERS)
        m = {"tcp1_gbps": raw["tcp1"]["gbps"], "tcp4_gbps": raw["tcp4"]["gbps"],
             "tcp1_mss536_gbps": raw["tcp1_mss536"]["gbps"],
             "udp64_kpps": raw["udp64"]["kpps"], "udp64_loss_pct": raw["udp64"]["loss_pct"],
             "udp_bulk_mbps": raw["udp_bulk"]["mbps"], "udp_bulk_loss_pct": raw["udp_bulk"]["loss_pct"],
             "ping_avg_ms": raw["ping"]["ping_avg_ms"], "ping_p99_ms": raw["ping"]["ping_p99_ms"],
             "cpu_s_per_gb": None, "start_to_ping_ms": None}
        cpu = [raw[t]["vpn_cpu_s"] for t in ("tcp1", "tcp4")]
        gb = (raw["tcp1"]["bytes"] + raw["tcp4"]["bytes"]) / 1e9
        if None not in cpu and gb > 0:
            m["cpu_s_per_gb"] = sum(cpu) / gb
        for k in ("tcp1_gbps", "tcp4_gbps", "tcp1_mss536_gbps", "udp64_kpps", "udp_bulk_mbps"):
            if not m[k] > 0:
                raise SystemFailed("%s carried no traffic" % k)
        return m, raw
