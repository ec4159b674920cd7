"""Table, JSON and chart."""
import json
import os
import shutil
import subprocess

from .measure import METRICS, ORDER
from .systems import ORDER as SYS_ORDER

FMT = {"tcp1_gbps": "%.2f", "tcp4_gbps": "%.2f", "tcp1_mss536_gbps": "%.2f",
       "udp64_kpps": "%.1f", "udp64_loss_pct": "%.1f", "udp_bulk_mbps": "%.0f",
       "udp_bulk_loss_pct": "%.1f", "ping_avg_ms": "%.3f", "ping_p99_ms": "%.3f",
       "cpu_s_per_gb": "%.2f", "start_to_ping_ms": "%.1f"}
HEAD = {"tcp1_gbps": "TCP x1 Gbit/s", "tcp4_gbps": "TCP x4 Gbit/s",
        "tcp1_mss536_gbps": "TCP MSS536 Gbit/s", "udp64_kpps": "UDP64 kpps",
        "udp64_loss_pct": "UDP64 loss%", "udp_bulk_mbps": "UDPmtu Mbit/s",
        "udp_bulk_loss_pct": "UDPmtu loss%", "ping_avg_ms": "ping avg ms",
        "ping_p99_ms": "ping p99 ms", "cpu_s_per_gb": "CPU s/GB",
        "start_to_ping_ms": "start->ping ms"}


def choose_reference(results):
    """meshfwd when it was measured, else the bare link."""
    for name, note in (("meshfwd", "ratios are system / meshfwd"),
                       ("veth", "ratios are system / bare veth link (meshfwd not measured)")):
        r = results.get(name)
        if r and r["status"] == "ok":
            if name == "veth" and "meshfwd" in results:
                note = "meshfwd %s: ratios are system / bare veth link instead" % results["meshfwd"]["status"]
            return name, note
    return None, "no reference system measured: no ratios"


def add_ratios(results, ref):
    for name, r in results.items():
        r["ratio"] = {}
        if not ref or r["status"] != "ok":
            continue
        for m in ORDER:
            v, base = r["median"].get(m), results[ref]["median"].get(m)
            r["ratio"][m] = (v / base) if (v is not None and base) else None


def table(results, ref, note, topology):
    rows = [["system", "status"] + [HEAD[m] for m in ORDER]]
    notes = []
    for name, r in results.items():
        row = [name, r["status"]]
        for m in ORDER:
            v = r.get("median", {}).get(m)
            if r["status"] != "ok" or v is None:
                row.append("n/a" if r["status"] == "ok" else "")
                continue
            cell = FMT[m] % v
            ratio = r.get("ratio", {}).get(m)
            if ratio is not None and name != ref:
                cell += " (%.2fx)" % ratio
            row.append(cell)
        rows.append(row)
        if r["status"] != "ok":
            notes.append("%s: %s: %s" % (name, r["status"], r.get("reason")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("topology %s; medians over repetitions; %s%s." % (
        topology, note, " (reference row: %s)" % ref if ref else ""))
    lines.append("higher is better: Gbit/s, Mbit/s, kpps; lower is better: loss, ms, CPU s/GB. "
                 "CPU s/GB: userspace VPN processes of all nodes (n/a for the kernel veth path). "
                 "UDPmtu: datagrams of MTU - 28 bytes. start->ping: launch of both ends to the "
                 "first echo reply.")
    lines += ["note: " + n for n in notes]
    return "\n".join(lines) + "\n"


def chart(results, ref, out_dir, title):
    """Grouped bars, one panel per metric, one bar per system. Returns the PNG path or raises."""
    gp = shutil.which("gnuplot")
    if not gp:
        raise RuntimeError("gnuplot not installed (Debian: gnuplot-nox)")
    dat = os.path.join(out_dir, "chart.dat")
    names = list(results)
    with open(dat, "w") as f:
        f.write("# idx system color " + " ".join(ORDER) + "\n")
        for i, name in enumerate(names):
            r = results[name]
            label = name if r["status"] == "ok" else "%s\\n(%s)" % (name, r["status"])
            vals = [r.get("median", {}).get(m) if r["status"] == "ok" else None for m in ORDER]
            color = SYS_ORDER.index(name) + 1 if name in SYS_ORDER else len(SYS_ORDER) + i + 1
            f.write('%d "%s" %d %s\n' % (i, label, color,
                                          " ".join("?" if v is None else repr(v) for v in vals)))
    png = os.path.join(out_dir, "chart.png")
    script = [
        "set terminal pngcairo size 1800,1350 font 'sans,10'",
        "set output '%s'" % png,
        "set datafile missing '?'",
        "set style fill solid 0.8 border -1",
        "set boxwidth 0.7",
        "set grid ytics",
        "set yrange [0:*]",
        "set offsets 0, 0, graph 0.1, 0",
        "set xrange [-0.6:%f]" % (len(names) - 0.4),
        "set multiplot layout %d,4 title '%s'" % ((len(ORDER) + 3) // 4, title.replace("'", "")),
    ]
    for k, m in enumerate(ORDER):
        unit, better, _ = METRICS[m]
        script += ["set title '%s (%s, %s is better)'" % (HEAD[m], unit, better)]
        if any(results[n].get("median", {}).get(m) is not None for n in names):
            script += ["plot '%s' using 1:%d:3:xtic(2) with boxes lc variable notitle, "
                       "'' using 1:%d:(sprintf('%%.4g', $%d)) with labels offset 0,0.7 notitle"
                       % (dat, k + 4, k + 4, k + 4)]
        else:   # e.g. CPU s/GB when only the kernel veth path was measured
            script += ["set label 1 'no data' at graph 0.5,0.5 center",
                       "set yrange [0:1]",
                       "plot '%s' using 1:(0):xtic(2) with boxes notitle" % dat,
                       "unset label 1", "set yrange [0:*]"]
    script += ["unset multiplot"]
    gpf = os.path.join(out_dir, "chart.gp")
    with open(gpf, "w") as f:
        f.write("\n".join(script) + "\n")
    cp = subprocess.run([gp, gpf], capture_output=True, text=True, timeout=60)
    if cp.returncode != 0 or not os.path.exists(png):
        raise RuntimeError("gnuplot failed: %s" % cp.stderr.strip()[-500:])
    return png


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
