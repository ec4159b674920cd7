#!/bin/bash
# Smoke test of the throughput runner (bench/throughput): `run --quick` builds its own pair of
# namespaces, measures the bare veth link and meshfwd, writes the table, JSON and chart, and cleans
# up. meshfwd's row must be measured: "unavailable" (meshfwd did not start or carried nothing) fails.
#
#   tp<pid>a  192.0.2.1/24 ---- veth ---- 192.0.2.2/24  tp<pid>b     (the runner's own topology)
#
# Checks: exit 0, JSON has veth and meshfwd figures > 0, no namespace or process of the
# runner is left. Args: $1 build dir, $2 source dir. Root only (77 = skipped).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
netns_require_root
netns_require_programs iperf3 python3
build=$(realpath "$1")
src=$(realpath "$(dirname "$0")/../..")

# The runner's namespaces are mfb<runner pid>-<n><node> (tput/util.py PREFIX). Only those of
# runners that have exited count: other tests or benchmarks may be running beside this one.
runner_namespaces() {
    local name pid
    ip netns list | awk '{ print $1 }' | sort | while read -r name; do
        [[ $name =~ ^mfb([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        [[ -d /proc/$pid ]] || echo "$name"
    done
}
before=$(runner_namespaces)
log "bench/throughput/run --quick"
timeout 120 "$src/bench/throughput/run" --quick --no-build --build-dir "$build" --out "$tmp/out" ||
    fail "runner exited $?"
python3 - "$tmp/out" <<'PY' || fail "results check"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
doc = json.loads((out / "results.json").read_text())
veth = doc["systems"]["veth"]
assert veth["status"] == "ok", veth
assert veth["median"]["tcp1_gbps"] > 0, veth["median"]
mf = doc["systems"]["meshfwd"]
assert mf["status"] == "ok", "meshfwd row is %s: %s" % (mf["status"], mf.get("reason", mf))
assert mf["median"]["tcp1_gbps"] > 0, mf["median"]
assert (out / "table.txt").read_text().strip(), "empty table"
assert doc["chart"] and (out / doc["chart"]).stat().st_size > 0, "no chart"
print("veth TCP x1 %.2f Gbit/s; meshfwd: %s %s" % (veth["median"]["tcp1_gbps"], mf["status"], mf.get("reason", "")))
PY
after=$(runner_namespaces)
[[ $before == "$after" ]] || fail "runner left namespaces behind: $(comm -13 <(echo "$before") <(echo "$after"))"
log "PASS: throughput runner smoke test"
