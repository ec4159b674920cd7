"""The measurements: ping RTT, iperf3 TCP (1 and 4 streams), iperf3 UDP 64-byte datagrams,
and the VPN processes' CPU time per GB moved during the TCP tests."""
import json
import math
import re

from .util import REG, RunnerError, SystemFailed, proc_cpu_seconds, run, wait_until

IPERF_PORT = 5201
UDP_LEN = 64
PING_COUNT = 200
PING_INTERVAL = "0.01"

METRICS = {
    # name: (unit, better, description)
    "tcp1_gbps": ("Gbit/s", "higher", "iperf3 TCP, 1 stream, receiver side"),
    "tcp4_gbps": ("Gbit/s", "higher", "iperf3 TCP, 4 streams (-P 4), receiver side"),
    "udp64_kpps": ("kpps", "higher", "iperf3 UDP 64-byte payloads, -b 0: datagrams received per second"),
    "udp64_loss_pct": ("%", "lower", "iperf3 UDP 64-byte: datagrams lost (sent but not received)"),
    "ping_avg_ms": ("ms", "lower", "ping RTT average, %d pings at %ss" % (PING_COUNT, PING_INTERVAL)),
    "ping_p99_ms": ("ms", "lower", "ping RTT 99th percentile (nearest rank)"),
    "cpu_s_per_gb": ("CPU s/GB", "lower", "utime+stime of the VPN processes on every node (both "
                     "ends; and the relay B on line3) during the two TCP tests, divided by the GB received"),
}
ORDER = list(METRICS)


def p_nearest(values, q):
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


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

    def tcp(self, streams):
        pids = self.pids_fn()
        before = {p: proc_cpu_seconds(p) for p in pids}
        res = self._iperf(["-P", str(streams)] if streams > 1 else [])
        after = {p: proc_cpu_seconds(p) for p in pids}
        cpu = sum(after[p] - before[p] for p in pids
                  if before[p] is not None and after[p] is not None)
        rx = res["end"]["sum_received"]
        return {"gbps": rx["bits_per_second"] / 1e9, "bytes": rx["bytes"], "seconds": rx["seconds"],
                "retransmits": res["end"].get("sum_sent", {}).get("retransmits"),
                "vpn_cpu_s": cpu if pids else None, "vpn_pids": pids,
                "iperf_cpu": res["end"].get("cpu_utilization_percent")}

    def udp64(self):
        res = self._iperf(["-u", "-l", str(UDP_LEN), "-b", "0"])
        # receiver side: sum_received (iperf3 >= 3.12); its lost count is the server's
        s = res["end"].get("sum_received") or res["end"]["sum"]
        received = s["packets"] - s["lost_packets"]
        if "bytes" in s and s.get("sender") is False:
            received = s["bytes"] // UDP_LEN
        secs = s["seconds"] or self.duration
        return {"kpps": received / secs / 1e3, "loss_pct": s["lost_percent"],
                "packets_sent": s["packets"], "packets_lost": s["lost_packets"],
                "packets_received": received, "seconds": secs}

    def all(self):
        """One repetition of every metric; returns (metrics, raw)."""
        raw = {"ping": self.ping()}
        raw["tcp1"] = self.tcp(1)
        raw["tcp4"] = self.tcp(4)
        raw["udp64"] = self.udp64()
        m = {"tcp1_gbps": raw["tcp1"]["gbps"], "tcp4_gbps": raw["tcp4"]["gbps"],
             "udp64_kpps": raw["udp64"]["kpps"], "udp64_loss_pct": raw["udp64"]["loss_pct"],
             "ping_avg_ms": raw["ping"]["ping_avg_ms"], "ping_p99_ms": raw["ping"]["ping_p99_ms"],
             "cpu_s_per_gb": None}
        cpu = [raw[t]["vpn_cpu_s"] for t in ("tcp1", "tcp4")]
        gb = (raw["tcp1"]["bytes"] + raw["tcp4"]["bytes"]) / 1e9
        if None not in cpu and gb > 0:
            m["cpu_s_per_gb"] = sum(cpu) / gb
        for k in ("tcp1_gbps", "tcp4_gbps", "udp64_kpps"):
            if not m[k] > 0:
                raise SystemFailed("%s carried no traffic" % k)
        return m, raw
