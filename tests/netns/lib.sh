# Shared helpers for tests/netns/*.sh. Source it right after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   netns_require_root            # exits 77 (meson: skipped) unless root; with CI set, exit 1
#   netns_pair                    # $ns1 <-> $ns2 over veth, 192.0.2.1/24 <-> 192.0.2.2/24
#   n1 ping -c1 192.0.2.2         # run a command in ns1 (n2 for ns2)
#
# Everything a test creates through these helpers (namespaces, processes started with
# netns_spawn, wireguard-go sockets, the temp dir $tmp) is removed by `cleanup`, which this
# file installs as the EXIT trap; it runs even when the test fails. Names carry the test's
# PID ($$) so parallel runs and other tests never collide. Only PIDs recorded here are killed.
# A test that needs its own teardown appends a function name to cleanup_hooks (run first).
#
# Helpers for meshfwd tests (they use the globals build=<build dir> and api=<host:port of the
# nodes' API>, which the test sets; $py is the python interpreter, see netns_python):
#   meshfwd_build DIR               sets build, meshfwd, meshctl; fails unless both are built
#   netns_python                    sets $py to the interpreter itself (a pyenv shim is slow)
#   not_running PID                 true once PID has exited
#   tunnel_ping NS ADDR             ping until answered (handshake), then 3 of 3 must answer
#   node_config NAME DEV ADDRS      YAML head of a node (ADDRS: "10.100.0.1/24, ...") ending
#   peer_config PUB ALLOWED [EP] [MESHFWD]    in "peers:"; peer_config prints one peer entry
#   meshfwd_pair_configs            keys and $tmp/a.yaml, $tmp/b.yaml for two meshfwd peers
#                                   (mfa0 10.100.0.1 <-> mfb0 10.100.0.2 over netns_pair's
#                                   underlay, `meshfwd: true`); sets pub_a, pub_b
#   status_json NS / peers_json NS  `meshctl status|peers --json` of the node in NS
#   drops_json NS                   its totals.drops as one JSON object
#   drop_count JSON REASON          one reason's count in such an object (0 when absent)
#   jget JSON EXPR                  the python expression EXPR with d = the parsed JSON
#   peer_field NS PUB FIELD         one field of one peer of the node in NS
#   endpoint_of NS PUB              that peer's endpoint ("" when none)
#   tcp_transfer SRC DST ADDR FILE  FILE over TCP from SRC to DST's ADDR:5001, sha256 checked
#   xfer_start RNS SNS ADDR BYTES RATE RECV_TIMEOUT SEND_TIMEOUT   a generated TCP stream
#   xfer_check BYTES WHEN           SNS -> RNS's ADDR:5201 (progress in $tmp/progress), and
#                                   after wait_pids: check it ended and the sha256s match
#   wait_pids DEADLINE PID...       waits for each PID in turn while $SECONDS < DEADLINE
# The TCP tool is tcp_xfer.py next to this file (one JSON line {"bytes","sha256"} per side).

ns1="mfa$$"
ns2="mfb$$"
_netns_namespaces=()
_netns_pids=()
_netns_wg_sockets=()
cleanup_hooks=()
tmp=$(mktemp -d "/tmp/meshfwd-netns.$$.XXXXXX")
netns_dir=$(realpath "$(dirname "${BASH_SOURCE[0]}")")
py=python3

n1() { ip netns exec "$ns1" "$@"; }
n2() { ip netns exec "$ns2" "$@"; }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

log() { echo "--- $*"; }

# A test that cannot run here: exit 77 (meson: skipped) on a developer's machine, but exit 1 in
# CI (the CI environment variable set and not "false"/"0", as CI services set CI=true): a runner
# without root, iperf3, nft or wireguard-go must fail, not pass with tests quietly skipped.
netns_skip() {
    if [[ -n ${CI:-} && ${CI:-} != false && ${CI:-} != 0 ]]; then
        echo "FAIL: $* (CI=$CI: a missing requirement is a failure in CI, not a skip)" >&2
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

netns_require_root() {
    [[ $(id -u) -eq 0 ]] || netns_skip "network namespace tests need root"
    command -v ip >/dev/null || netns_skip "iproute2 (ip) not installed"
}

# Skips (77; in CI fails) unless every named program is installed.
netns_require_programs() {
    local p
    for p in "$@"; do
        command -v "$p" >/dev/null || netns_skip "$p not installed"
    done
}

cleanup() {
    local rc=$?
    set +e
    local hook pid ns sock i
    for hook in "${cleanup_hooks[@]}"; do
        "$hook"
    done
    # Processes first (they hold TUN devices and sockets), newest first; TERM, then KILL.
    for ((i = ${#_netns_pids[@]} - 1; i >= 0; i--)); do
        pid=${_netns_pids[i]}
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_netns_pids[@]}"; do
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # wireguard-go leaves its UAPI socket behind when killed hard.
    for sock in "${_netns_wg_sockets[@]}"; do
        rm -f "$sock"
    done
    for ns in "${_netns_namespaces[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$tmp"
    if [[ $rc -ne 0 && $rc -ne 77 ]]; then
        echo "(test failed with exit $rc; namespaces and processes removed)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

netns_add() {
    local ns=$1
    ip netns add "$ns"
    _netns_namespaces+=("$ns")
    ip -n "$ns" link set lo up
}

# Two namespaces joined by a veth pair: $ns1 192.0.2.1/24 (veth1) <-> $ns2 192.0.2.2/24 (veth2).
netns_pair() {
    netns_add "$ns1"
    netns_add "$ns2"
    ip link add veth1 netns "$ns1" type veth peer name veth2 netns "$ns2"
    ip -n "$ns1" addr add 192.0.2.1/24 dev veth1
    ip -n "$ns2" addr add 192.0.2.2/24 dev veth2
    ip -n "$ns1" link set veth1 up
    ip -n "$ns2" link set veth2 up
    # IPv6 DAD would hold addresses "tentative" for a second; nothing here needs it.
    ip netns exec "$ns1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip netns exec "$ns2" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# Polls `cmd...` every 0.1 s until it succeeds or `seconds` of wall-clock time pass (however
# long each try takes); returns 1 on timeout.
wait_until() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    "$@" >/dev/null 2>&1
}

# Starts `cmd...` in the background inside namespace `ns`, records its PID for cleanup and
# sets $spawned_pid. Output goes to $tmp/<name>.log. `ip netns exec` execs the command, so
# the PID is the command's own.
netns_spawn() {
    local ns=$1 name=$2
    shift 2
    ip netns exec "$ns" "$@" >"$tmp/$name.log" 2>&1 &
    spawned_pid=$!
    _netns_pids+=("$spawned_pid")
}

# Starts wireguard-go in the foreground on interface `ifname` (15 characters at most, unique
# machine-wide: /var/run/wireguard is shared by all namespaces) inside `ns` and waits up to
# 5 s for the interface and its UAPI socket. With `cores` (a taskset list) and `procs`, it runs
# on those CPUs with GOMAXPROCS=procs. Sets $spawned_pid.
netns_wireguard_go() {
    local ns=$1 ifname=$2 cores=${3:-} procs=${4:-}
    (( ${#ifname} <= 15 )) || fail "interface name $ifname is longer than 15 characters"
    [[ ! -e /var/run/wireguard/$ifname.sock ]] || fail "/var/run/wireguard/$ifname.sock already exists"
    _netns_wg_sockets+=("/var/run/wireguard/$ifname.sock")
    local pin=()
    [[ -z $cores ]] || pin=(taskset -c "$cores" env GOMAXPROCS="$procs")
    netns_spawn "$ns" "wireguard-go-$ifname" "${pin[@]}" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifname"
    if ! wait_until 5 test -S "/var/run/wireguard/$ifname.sock" ||
        ! wait_until 5 ip -n "$ns" link show "$ifname"; then
        cat "$tmp/wireguard-go-$ifname.log" >&2
        fail "wireguard-go did not create $ifname within 5 s"
    fi
}

# Starts `$build/tools/meshfwd-wg -f ifname` (one worker on CPU 0, LOG_LEVEL=info, log in
# $tmp/wg-<ifname>.log) inside `ns` and waits up to 5 s for its UAPI socket. Same naming rules
# as netns_wireguard_go. Sets $spawned_pid.
netns_meshfwd_wg() {
    local ns=$1 ifname=$2
    (( ${#ifname} <= 15 )) || fail "interface name $ifname is longer than 15 characters"
    [[ ! -e /var/run/wireguard/$ifname.sock ]] || fail "/var/run/wireguard/$ifname.sock already exists"
    _netns_wg_sockets+=("/var/run/wireguard/$ifname.sock")
    netns_spawn "$ns" "wg-$ifname" env LOG_LEVEL=info MESHFWD_CORES=0 "$build/tools/meshfwd-wg" -f "$ifname"
    wait_until 5 test -S "/var/run/wireguard/$ifname.sock" || { cat "$tmp/wg-$ifname.log" >&2; fail "no socket for $ifname"; }
}

# Writes a private key for a meshfwd node to $tmp/<name>.key (mode 0600) and sets $pubkey to
# its public key. Uses the build's meshctl ($build/tools/meshctl; set build= first).
meshfwd_key() {
    local name=$1
    (umask 077 && "$build/tools/meshctl" genkey >"$tmp/$name.key")
    pubkey=$("$build/tools/meshctl" pubkey <"$tmp/$name.key")
}

# Starts meshfwd inside `ns` with config `config` on CPUs `cores` (e.g. 0 or 0-1) and waits up
# to 10 s for its API (api.listen from the config, given as `api` host:port) to answer.
# Sets $spawned_pid; the log is $tmp/meshfwd-<name>.log.
netns_meshfwd() {
    local ns=$1 name=$2 config=$3 cores=$4 api=$5
    netns_spawn "$ns" "meshfwd-$name" "$build/tools/meshfwd" --cores "$cores" -c "$config" --log-level debug
    local pid=$spawned_pid
    if ! wait_until 10 ip netns exec "$ns" "$build/tools/meshctl" status --api "$api"; then
        cat "$tmp/meshfwd-$name.log" >&2
        fail "meshfwd $name did not start (API $api not answering within 10 s)"
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/meshfwd-$name.log" >&2; fail "meshfwd $name exited"; }
    spawned_pid=$pid
}

# --- meshfwd test helpers (see the list at the top) -------------------------------------------

# The interpreter itself: a pyenv shim costs ~0.7 s a call, and some checks run in a loop.
netns_python() { py=$(python3 -c 'import sys; print(sys.executable)'); }

not_running() { ! kill -0 "$1" 2>/dev/null; }

# tunnel_ping NS ADDR: the first pings may wait for the handshake, so up to 5 tries of
# `ping -c 3 -W 2`; once one answers, a further `ping -c 3` must get all 3 replies.
tunnel_ping() {
    local ns=$1 addr=$2 i out
    for ((i = 0; i < 5; i++)); do
        ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 "$addr" >/dev/null 2>&1 && break
    done
    ((i < 5)) || fail "ping $addr from $ns: no reply in 5 tries of 3"
    out=$(ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 "$addr" 2>&1) || true
    grep -q " 3 received" <<<"$out" || fail "ping $addr from $ns after the handshake: $(tail -2 <<<"$out")"
    echo "    $ns -> $addr: $(grep -o '[0-9]* packets transmitted.*loss' <<<"$out")"
}

# node_config NAME DEVICE ADDRESSES: YAML on stdout, block style (meshfwd_reload breaks the
# `  listen_port: 51820` line on purpose); follow it with one peer_config per peer.
node_config() {
    cat <<EOF
node:
  name: $1
  private_key_file: $1.key
  listen_port: 51820
  address: [$3]
mesh:
  device: {type: tun, name: $2, mtu: 1420}
dataplane: {poll: adaptive, batch: 64, crypto: auto}
api: {listen: $api}
peers:
EOF
}

# peer_config PUB ALLOWED_IPS [ENDPOINT] [MESHFWD]: one peer entry ("" for no endpoint;
# MESHFWD true/false, the node's default when left out).
peer_config() {
    echo "  - public_key: \"$1\""
    echo "    allowed_ips: [$2]"
    [[ -z ${3:-} ]] || echo "    endpoint: $3"
    [[ -z ${4:-} ]] || echo "    meshfwd: $4"
}

meshfwd_pair_configs() {
    meshfwd_key a
    pub_a=$pubkey
    meshfwd_key b
    pub_b=$pubkey
    { node_config a mfa0 10.100.0.1/24; peer_config "$pub_b" 10.100.0.2/32 192.0.2.2:51820 true; } >"$tmp/a.yaml"
    { node_config b mfb0 10.100.0.2/24; peer_config "$pub_a" 10.100.0.1/32 192.0.2.1:51820 true; } >"$tmp/b.yaml"
}

status_json() { ip netns exec "$1" "$build/tools/meshctl" status --api "$api" --json; }
peers_json() { ip netns exec "$1" "$build/tools/meshctl" peers --api "$api" --json; }

drops_json() {
    status_json "$1" | "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["totals"]["drops"]))'
}

drop_count() { "$py" -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))' "$1" "$2"; }

jget() {
    "$py" -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# peer_field NS PUB FIELD: fails the test when the API does not answer or lacks the peer.
peer_field() {
    local pj
    pj=$(peers_json "$1") || fail "meshctl peers --json in $1"
    jget "$pj" "[p for p in d['peers'] if p['public_key'] == '$2'][0]['$3']"
}

endpoint_of() {
    peers_json "$1" | "$py" -c '
import json, sys
for p in json.load(sys.stdin)["peers"]:
    if p["public_key"] == sys.argv[1]:
        print(p.get("endpoint") or "")' "$2"
}

# tcp_transfer SRC_NS DST_NS DST_ADDR FILE: FILE from SRC_NS to DST_ADDR:5001 with tcp_xfer.py;
# the receiver's byte count and sha256 must equal the file's.
tcp_transfer() {
    local src=$1 dst=$2 addr=$3 file=$4 got want size
    netns_spawn "$dst" xfer-recv timeout 60 "$py" "$netns_dir/tcp_xfer.py" recv --host "$addr" --port 5001 --timeout 30
    local rpid=$spawned_pid
    ip netns exec "$src" timeout 60 "$py" "$netns_dir/tcp_xfer.py" send --host "$addr" --port 5001 \
        --file "$file" --timeout 30 --connect-timeout 10 >/dev/null || fail "TCP transfer to $addr: sender failed"
    wait "$rpid" || fail "TCP transfer to $addr: receiver failed: $(cat "$tmp/xfer-recv.log")"
    got=$(tail -n1 "$tmp/xfer-recv.log")
    size=$(stat -c %s "$file")
    want="{\"bytes\": $size, \"sha256\": \"$(sha256sum "$file" | cut -d' ' -f1)\"}"
    [[ $got == "$want" ]] || fail "TCP transfer to $addr: received $got, sent $want"
    echo "    $size bytes, sha256 matches"
}

# xfer_start RECV_NS SEND_NS ADDR BYTES RATE RECV_TIMEOUT SEND_TIMEOUT: a generated TCP stream
# of BYTES at RATE bytes/s (0: full speed) to ADDR:5201; sets recv_pid and send_pid. Logs are
# $tmp/recv.log and $tmp/send.log; the receiver's progress is $tmp/progress.
xfer_start() {
    netns_spawn "$1" recv "$py" "$netns_dir/tcp_xfer.py" recv --host "$3" --port 5201 --timeout "$6" \
        --progress "$tmp/progress"
    recv_pid=$spawned_pid
    netns_spawn "$2" send "$py" "$netns_dir/tcp_xfer.py" send --host "$3" --port 5201 --bytes "$4" \
        --rate "$5" --timeout "$7"
    send_pid=$spawned_pid
}

# wait_pids DEADLINE PID...: waits for each PID in turn while $SECONDS < DEADLINE.
wait_pids() {
    local deadline=$1 pid
    shift
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    done
}

# xfer_check BYTES WHEN: after wait_pids (DEADLINE as the caller wants), both ends must have ended well (WHEN completes
# "transfer still running ..." otherwise), with BYTES sent and the same count and sha256.
xfer_check() {
    local size=$1 when=$2 sent got
    kill -0 "$send_pid" 2>/dev/null &&
        fail "transfer still running $when (receiver at $(cat "$tmp/progress" 2>/dev/null || echo 0) bytes)"
    kill -0 "$recv_pid" 2>/dev/null && fail "receiver still running after the sender ended"
    wait "$send_pid" || fail "sender failed: $(cat "$tmp/send.log")"
    wait "$recv_pid" || fail "receiver failed: $(cat "$tmp/recv.log")"
    sent=$(tail -n1 "$tmp/send.log")
    got=$(tail -n1 "$tmp/recv.log")
    log "sent $sent"
    log "got  $got"
    [[ $sent == "$got" ]] || fail "checksum or length mismatch"
    [[ $sent == *"\"bytes\": $size,"* ]] || fail "sender did not send $size bytes"
}

# meshfwd_build DIR: sets build (absolute), meshfwd and meshctl; fails unless both are built.
meshfwd_build() {
    build=$(realpath "$1")
    meshfwd=$build/tools/meshfwd
    meshctl=$build/tools/meshctl
    [[ -x $meshfwd && -x $meshctl ]] || fail "$meshfwd or $meshctl not built"
}
