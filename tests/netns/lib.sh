# Shared helpers for tests/netns/*.sh. Source it right after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   netns_require_root            # exits 77 (meson: skipped) unless root
#   netns_pair                    # $ns1 <-> $ns2 over veth, 192.0.2.1/24 <-> 192.0.2.2/24
#   n1 ping -c1 192.0.2.2         # run a command in ns1 (n2 for ns2)
#
# Everything a test creates through these helpers (namespaces, processes started with
# netns_spawn, wireguard-go sockets, the temp dir $tmp) is removed by `cleanup`, which this
# file installs as the EXIT trap; it runs even when the test fails. Names carry the test's
# PID ($$) so parallel runs and other tests never collide. Only PIDs recorded here are killed.
# A test that needs its own teardown appends a function name to cleanup_hooks (run first).

ns1="mfa$$"
ns2="mfb$$"
_netns_namespaces=()
_netns_pids=()
_netns_wg_sockets=()
cleanup_hooks=()
tmp=$(mktemp -d "/tmp/meshfwd-netns.$$.XXXXXX")

n1() { ip netns exec "$ns1" "$@"; }
n2() { ip netns exec "$ns2" "$@"; }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

log() { echo "--- $*"; }

netns_require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "SKIP: network namespace tests need root"
        exit 77
    fi
    command -v ip >/dev/null || { echo "SKIP: iproute2 not installed"; exit 77; }
}

# Skips (77) unless every named program is installed.
netns_require_programs() {
    local p
    for p in "$@"; do
        command -v "$p" >/dev/null || { echo "SKIP: $p not installed"; exit 77; }
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
# 5 s for the interface and its UAPI socket. Sets $spawned_pid.
netns_wireguard_go() {
    local ns=$1 ifname=$2
    (( ${#ifname} <= 15 )) || fail "interface name $ifname is longer than 15 characters"
    [[ ! -e /var/run/wireguard/$ifname.sock ]] || fail "/var/run/wireguard/$ifname.sock already exists"
    _netns_wg_sockets+=("/var/run/wireguard/$ifname.sock")
    netns_spawn "$ns" "wireguard-go-$ifname" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifname"
    if ! wait_until 5 test -S "/var/run/wireguard/$ifname.sock" ||
        ! wait_until 5 ip -n "$ns" link show "$ifname"; then
        cat "$tmp/wireguard-go-$ifname.log" >&2
        fail "wireguard-go did not create $ifname within 5 s"
    fi
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
