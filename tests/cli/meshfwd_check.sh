#!/bin/bash
# meshfwd's command line and `--check`: the real binary on a good config (the shipped example,
# key created by --init-key), on one small bad config per error class (exit 1, stderr names
# mesh.yaml:line:col and the key path), on bad --cores (exit 2), --version and --help.
# Args: $1 build dir, $2 source dir. One line per case; exits 1 if any case failed.
set -uo pipefail

build=$1
src=$2
meshfwd=$(cd "$build" && pwd)/tools/meshfwd
src=$(cd "$src" && pwd)

tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

failures=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1: $2"; failures=$((failures + 1)); }

random_key() { head -c 32 /dev/urandom | base64; }

# Runs meshfwd in directory $1 with the remaining args; sets out, err, rc.
run_in() {
    local dir=$1; shift
    out=$(cd "$dir" && "$meshfwd" "$@" 2>"$tmp/stderr")
    rc=$?
    err=$(cat "$tmp/stderr")
}

# A case directory holding a valid private key a.key (mode 0600); an existing one is kept.
new_case() {
    local dir=$tmp/$1
    mkdir -p "$dir"
    [[ -e $dir/a.key ]] || (umask 077 && random_key >"$dir/a.key")
    echo "$dir"
}

node_yaml=$'node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n'

# bad NAME EXPECTED_LOCATION_AND_PATH [EXTRA_TEXT] < yaml
# Expects exit 1 and a stderr line "meshfwd: error: mesh.yaml:<EXPECTED...>" (containing EXTRA_TEXT).
bad() {
    local name=$1 expect=$2 extra=${3:-}
    local dir
    dir=$(new_case "$name")
    cat >"$dir/mesh.yaml"
    run_in "$dir" --check -c mesh.yaml
    if [[ $rc -ne 1 ]]; then
        fail "$name" "exit $rc, expected 1 (stderr: $err)"
    elif ! grep -qF -- "meshfwd: error: mesh.yaml:$expect" <<<"$err"; then
        fail "$name" "stderr lacks 'mesh.yaml:$expect': $err"
    elif [[ -n $extra ]] && ! grep -F -- "mesh.yaml:$expect" <<<"$err" | grep -qF -- "$extra"; then
        fail "$name" "stderr line for '$expect' lacks '$extra': $err"
    else
        pass "$name"
    fi
}

# ---- good configurations --------------------------------------------------------------------

mkdir -p "$tmp/example"
cp "$src/examples/mesh.yaml" "$tmp/example/"
# The shipped example runs as it is: no error, no warning (no key this version ignores).
run_in "$tmp/example" --check --init-key -c mesh.yaml
if [[ $rc -ne 0 ]]; then
    fail "example --check --init-key" "exit $rc: $err"
elif [[ -n $err ]]; then
    fail "example --check --init-key" "stderr is not empty: $err"
elif [[ $(stat -c %a "$tmp/example/a.key") != 600 ]]; then
    fail "example --check --init-key" "a.key is mode $(stat -c %a "$tmp/example/a.key")"
elif ! grep -q "mesh.yaml is valid: node a, public key .*; 2 static peers" <<<"$out"; then
    fail "example --check --init-key" "unexpected summary: $out"
else
    pass "example --check --init-key"
fi
example_pub=$(sed -n 's/.*public key \([^,]*\),.*/\1/p' <<<"$out")
if command -v wg >/dev/null; then
    if [[ -n $example_pub && $(wg pubkey <"$tmp/example/a.key") == "$example_pub" ]]; then
        pass "created key matches wg pubkey"
    else
        fail "created key matches wg pubkey" "wg says $(wg pubkey <"$tmp/example/a.key"), meshfwd $example_pub"
    fi
fi

run_in "$tmp/example" --check -c mesh.yaml --cores 0
if [[ $rc -eq 0 ]] && grep -q "public key $example_pub" <<<"$out" && grep -q "1 core (0)" <<<"$out"; then
    pass "example --check again reads the same key"
else
    fail "example --check again reads the same key" "exit $rc: $out $err"
fi

# One set of checks for --check and start-up: what this version does not act on is refused by
# both with the same file:line message (before any device or socket exists), or warned about by
# both. Start-up runs with --cores 0; a refused config never gets as far as creating anything.
dir=$(new_case unsupported)
# same_refusal NAME FILE EXPECTED_LINE: --check and a real start both exit 1 with EXPECTED_LINE.
same_refusal() {
    local name=$1 file=$2 expect=$3 check_err
    run_in "$dir" --check -c "$file"
    check_err=$err
    if [[ $rc -ne 1 ]] || ! grep -qxF -- "$expect" <<<"$err"; then
        fail "$name (--check)" "exit $rc, stderr: $err"
        return
    fi
    run_in "$dir" --cores 0 -c "$file"
    if [[ $rc -eq 1 && $err == "$check_err" ]]; then
        pass "$name: refused by --check and at start, same message"
    else
        fail "$name (start)" "exit $rc, stderr: $err (--check said: $check_err)"
    fi
}
printf 'node: {private_key_file: a.key, address: 10.0.0.1/24}\nmesh: {device: {type: tap}}\n' >"$dir/tap.yaml"
same_refusal tap tap.yaml \
    "meshfwd: error: tap.yaml:2:17: mesh.device.type: not implemented in this version: TAP (layer 2) devices; use tun"
printf 'node: {private_key_file: a.key, address: 10.0.0.1/24}\ndataplane:\n  port: {type: dpdk}\n' >"$dir/dpdk.yaml"
same_refusal dpdk dpdk.yaml \
    "meshfwd: error: dpdk.yaml:3:10: dataplane.port.type: not implemented in this version: DPDK ports; use uring"
printf 'node: {private_key_file: a.key, address: 10.0.0.1/24}\ngateway:\n  exit_node: true\n' >"$dir/exit.yaml"
same_refusal exit_node exit.yaml \
    "meshfwd: error: exit.yaml:3:3: gateway.exit_node: not implemented in this version: exit node (0.0.0.0/0 and ::/0 with masquerade); remove it or set false"
printf 'node: {private_key_file: a.key, address: 10.0.0.1/24}\ngateway:\n  forwards:\n    - {name: web, listen_port: 8080, backends: [10.0.0.2:80]}\n' >"$dir/fwd.yaml"
same_refusal forwards fwd.yaml \
    "meshfwd: error: fwd.yaml:3:3: gateway.forwards: not implemented in this version: gateway port forwards; remove them (nothing would listen on their ports)"
# The MTU limit (the largest whose WireGuard message fits a UDP datagram): --check and start agree.
printf 'node: {private_key_file: a.key, address: 10.0.0.1/24}\nmesh:\n  device: {mtu: 65476}\n' >"$dir/mtu.yaml"
same_refusal mtu_above_udp_start mtu.yaml \
    "meshfwd: error: mtu.yaml:3:17: mesh.device.mtu: 65476 is out of range 576..65475 (576 is the smallest packet every IPv4 host must accept (RFC 791), 65475 the largest whose WireGuard message (MTU + 32) fits a UDP datagram over IPv4 (65535 - 20 - 8))"

# Features not built yet that do not change what the node exposes are warned about, each at its
# line, with --check and at start alike; the config is valid.
cat >"$dir/later.yaml" <<EOF
node: {private_key_file: a.key, address: 10.0.0.1/24}
mesh:
  enabled: true
  network_id: net
  device: {mac_address: "02:00:5e:10:00:01"}
  discovery: {server: "coord.example.com:7080", server_public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="}
  stun: {servers: ["stun:stun.example.com"]}
  turn:
    servers: [{url: "turn:turn.example.com", username: "\${TURN_USER}", password: p}]
  connection: {relay_enabled: false}
  routing: {max_hops: 4}
dataplane: {port: {dpdk: {eal_args: [--no-huge]}}}
EOF
expected_warnings="meshfwd: warning: later.yaml:5:12: mesh.device.mac_address: used by tap devices only; ignored with tun
meshfwd: warning: later.yaml:7:3: mesh.stun: not implemented in this version: STUN (NAT traversal); peers are reached at their configured endpoints; ignored
meshfwd: warning: later.yaml:8:3: mesh.turn: not implemented in this version: TURN relays; ignored
meshfwd: warning: later.yaml:10:3: mesh.connection: not implemented in this version: NAT traversal and relays; ignored
meshfwd: warning: later.yaml:11:3: mesh.routing: not implemented in this version: mesh routing; ignored
meshfwd: warning: later.yaml:12:27: dataplane.port.dpdk.eal_args: used with dataplane.port.type dpdk only; ignored"
TURN_USER=demo run_in "$dir" --check -c later.yaml
if [[ $rc -eq 0 && $err == "$expected_warnings" ]]; then
    pass "features not built yet: warned with --check, each at its line"
else
    fail "features not built yet: warned with --check" "exit $rc, stderr:
$err
expected:
$expected_warnings"
fi
# The same config without TURN_USER: a ${VAR} in an ignored key is still validated.
unset TURN_USER
run_in "$dir" --check -c later.yaml
if [[ $rc -eq 1 ]] && grep -qF "later.yaml:9:56: mesh.turn.servers[0].username: environment variable TURN_USER is not set" <<<"$err"; then
    pass "unset \${TURN_USER} in mesh.turn"
else
    fail "unset \${TURN_USER} in mesh.turn" "exit $rc, stderr: $err"
fi

# A tab in the indentation: said plainly, not as yaml-cpp's "illegal map value" or similar.
dir=$(new_case tab)
printf 'node:\n  private_key_file: a.key\n\taddress: 10.0.0.1/24\n' >"$dir/mesh.yaml"
run_in "$dir" --check -c mesh.yaml
if [[ $rc -eq 1 && $err == "meshfwd: error: mesh.yaml:3:1: a tab character is used for indentation; YAML allows only spaces" ]]; then
    pass "tab indentation named as such"
else
    fail "tab indentation named as such" "exit $rc, stderr: $err"
fi

# A node that takes its addresses and peers from meshcoord: no node.address, replicas listed.
dir=$(new_case coord)
cat >"$dir/mesh.yaml" <<EOF
node: {private_key_file: a.key}
mesh:
  enabled: true
  network_id: office
  discovery:
    server: ["http://192.0.2.10:7080", "https://coord.example.com"]
    server_public_key: "$(random_key)"
    invite: "\${MESHFWD_TEST_INVITE}"
EOF
MESHFWD_TEST_INVITE=mfinv1.x.y run_in "$dir" --check -c mesh.yaml
if [[ $rc -eq 0 && -z $err ]] && grep -qF "address from meshcoord" <<<"$out" &&
    grep -qF "mesh network office on tun device mesh0 (MTU 1400) via http://192.0.2.10:7080, https://coord.example.com:443" <<<"$out"; then
    pass "meshcoord node: --check without node.address"
else
    fail "meshcoord node: --check without node.address" "exit $rc, stdout: $out, stderr: $err"
fi

# ---- one bad config per error class -----------------------------------------------------------

bad empty_file "1:1: " "file is empty" </dev/null
bad not_a_mapping "1:1: " "expected a mapping" <<<"- just a list"
bad yaml_syntax "2:" "YAML syntax error" <<<"node: {private_key_file: a.key"
bad missing_required "2:3: node.address: required key is missing" <<<$'node:\n  private_key_file: a.key'
bad unknown_key "4:3: node.listen_prot: unknown key" "did you mean 'listen_port'?" <<<"${node_yaml}  listen_prot: 1"
bad map_for_list "5:3: peers: expected a list, got a mapping" <<<"${node_yaml}peers:"$'\n  public_key: x'
bad string_for_int "6:10: mesh.device.mtu: expected a whole number, got 'abc'" <<<"${node_yaml}mesh:"$'\n  device:\n    mtu: abc'
bad bad_cidr "5:17: mesh.network_cidr: " <<<"${node_yaml}mesh:"$'\n  network_cidr: 10.100.0.0/40'
bad bad_address "3:12: node.address: " <<<$'node:\n  private_key_file: a.key\n  address: 10.100.0/16'
bad bad_duration "6:25: mesh.discovery.heartbeat_interval: " "write 30s" <<<"${node_yaml}mesh:"$'\n  discovery:\n    heartbeat_interval: 30'
bad listen_port_0 "4:16: node.listen_port: 0 is out of range 1..65535" <<<"${node_yaml}  listen_port: 0"
bad listen_port_70000 "4:16: node.listen_port: 70000 is out of range 1..65535" <<<"${node_yaml}  listen_port: 70000"
bad endpoint_port "6:15: peers[0].endpoint: " <<<"${node_yaml}peers:
  - public_key: $(random_key)
    endpoint: 192.0.2.1:70000
    allowed_ips: []"
bad mtu_range "6:10: mesh.device.mtu: 100 is out of range 576..65475" "RFC 791" <<<"${node_yaml}mesh:"$'\n  device:\n    mtu: 100'
bad mtu_above_udp "6:10: mesh.device.mtu: 65476 is out of range 576..65475" "fits a UDP datagram" <<<"${node_yaml}mesh:"$'\n  device:\n    mtu: 65476'
bad device_type "6:11: mesh.device.type: unknown value 'tan'; valid values: tun, tap" <<<"${node_yaml}mesh:"$'\n  device:\n    type: tan'
bad batch_range "5:10: dataplane.batch: 300 is out of range 1..256" <<<"${node_yaml}dataplane:"$'\n  batch: 300'
bad poll_enum "5:9: dataplane.poll: unknown value 'spin'; valid values: adaptive, busy" <<<"${node_yaml}dataplane:"$'\n  poll: spin'
bad crypto_enum "5:11: dataplane.crypto: unknown value 'aes'; valid values: auto, libsodium, ipsec-mb" <<<"${node_yaml}dataplane:"$'\n  crypto: aes'
bad port_enum "6:11: dataplane.port.type: unknown value 'af_xdp'; valid values: uring, dpdk" <<<"${node_yaml}dataplane:"$'\n  port:\n    type: af_xdp'
bad peer_key "6:17: peers[0].public_key: not 32 bytes of base64" <<<"${node_yaml}peers:
  - allowed_ips: []
    public_key: c2hvcnQ="
dup=$(random_key)
bad duplicate_peer "7:17: peers[1].public_key: same public key as peers[0]" <<<"${node_yaml}peers:
  - {allowed_ips: [], public_key: $dup}
  - allowed_ips: []
    public_key: $dup"
bad overlap "7:78: peers[1].allowed_ips[0]: 10.100.0.0/24 overlaps 10.100.0.0/16 of peers[0] (line 6)" <<<"${node_yaml}peers:
  - public_key: $(random_key)
    allowed_ips: [10.100.0.0/16]
  - {public_key: $(random_key), allowed_ips: [10.100.0.0/24]}"
unset MESHFWD_CLI_TEST_UNSET
bad env_unset "5:15: mesh.network_id: environment variable MESHFWD_CLI_TEST_UNSET is not set" <<<"${node_yaml}mesh:"$'\n  network_id: ${MESHFWD_CLI_TEST_UNSET}'

# Our own key as a peer: the public key comes from a --check of the same key file.
dir=$(new_case own_key)
printf '%s' "$node_yaml" >"$dir/mesh.yaml"
run_in "$dir" --check -c mesh.yaml
own=$(sed -n 's/.*public key \([^,]*\),.*/\1/p' <<<"$out")
bad own_key "6:17: peers[0].public_key: is this node's own public key" <<<"${node_yaml}peers:
  - allowed_ips: []
    public_key: $own"

# Key files: missing without --init-key, too open, not a key.
dir=$tmp/key_missing
mkdir -p "$dir"
printf '%s' "$node_yaml" >"$dir/mesh.yaml"
run_in "$dir" --check -c mesh.yaml
if [[ $rc -eq 1 ]] && grep -qF "mesh.yaml:2:21: node.private_key_file: key file a.key does not exist; pass --init-key to create it" <<<"$err" &&
    [[ ! -e $dir/a.key ]]; then
    pass "key_missing"
else
    fail "key_missing" "exit $rc, stderr: $err"
fi
dir=$(new_case key_mode)
chmod 644 "$dir/a.key"
printf '%s' "$node_yaml" >"$dir/mesh.yaml"
run_in "$dir" --check -c mesh.yaml
if [[ $rc -eq 1 ]] && grep -qF "mesh.yaml:2:21: node.private_key_file: key file a.key is mode 0644; must not be accessible by group or others (chmod 600)" <<<"$err"; then
    pass "key_mode"
else
    fail "key_mode" "exit $rc, stderr: $err"
fi
dir=$(new_case key_content)
printf 'hunter2-not-a-key\n' >"$dir/a.key"
printf '%s' "$node_yaml" >"$dir/mesh.yaml"
run_in "$dir" --check -c mesh.yaml
if [[ $rc -eq 1 ]] && grep -qF "mesh.yaml:2:21: node.private_key_file: key file a.key does not hold one base64 key" <<<"$err" &&
    ! grep -q hunter2 <<<"$err"; then
    pass "key_content"
else
    fail "key_content" "exit $rc, stderr: $err"
fi

# Several problems: all reported, one per line, in file order.
dir=$(new_case several)
printf 'node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n  listen_port: 0\ndataplane: {batch: 0, poll: x}\n' >"$dir/mesh.yaml"
run_in "$dir" --check -c mesh.yaml
if [[ $rc -eq 1 && $(grep -c '^meshfwd: error: mesh.yaml:' <<<"$err") -eq 3 ]] &&
    [[ $(sed -n 1p <<<"$err") == "meshfwd: error: mesh.yaml:4:16: "* && $(sed -n 3p <<<"$err") == "meshfwd: error: mesh.yaml:5:29: "* ]]; then
    pass "several errors in file order"
else
    fail "several errors in file order" "exit $rc, stderr: $err"
fi

# ---- command line --------------------------------------------------------------------------------

for cores in 5-2 a 999; do
    run_in "$tmp/example" --check --cores "$cores" -c mesh.yaml
    if [[ $rc -eq 2 ]] && grep -q "^meshfwd: error: --cores $cores: ." <<<"$err"; then
        pass "--cores $cores refused"
    else
        fail "--cores $cores refused" "exit $rc, stderr: $err"
    fi
done

# Without --cores: one worker per CPU the process may run on (taskset narrows that), as the
# summary shows; start-up uses the same list.
if command -v taskset >/dev/null; then
    out=$(cd "$tmp/example" && taskset -c 0 "$meshfwd" --check -c mesh.yaml 2>&1)
    if grep -q "data plane: 1 core (0, the default: CPUs this process may run on)" <<<"$out"; then
        pass "no --cores under taskset -c 0: one worker on CPU 0"
    else
        fail "no --cores under taskset -c 0: one worker on CPU 0" "$out"
    fi
fi
run_in "$tmp/example" --check -c mesh.yaml
allowed=$(python3 -c 'import os; print(min(len(os.sched_getaffinity(0)), 64))')
if [[ $rc -eq 0 ]] && grep -q "data plane: $allowed cores\? (.*, the default" <<<"$out"; then
    pass "no --cores: every allowed CPU ($allowed)"
else
    fail "no --cores: every allowed CPU ($allowed)" "exit $rc: $out $err"
fi

# dataplane.lane_ports must hold a port per worker: known once --cores is, checked by --check too.
if (( $(nproc) >= 2 )); then
    dir=$(new_case lanes)
    printf 'node: {private_key_file: a.key, address: 10.0.0.1/24}\ndataplane:\n  lane_ports: 52000-52000\n' >"$dir/mesh.yaml"
    run_in "$dir" --check --cores 0-1 -c mesh.yaml
    if [[ $rc -eq 1 && $err == "meshfwd: error: mesh.yaml:3:15: dataplane.lane_ports: 52000-52000 holds 1 port; 2 workers need one each (widen the range or give fewer --cores)" ]]; then
        pass "lane_ports smaller than the workers"
    else
        fail "lane_ports smaller than the workers" "exit $rc, stderr: $err"
    fi
fi

run_in "$tmp" --check -c nowhere.yaml
if [[ $rc -eq 1 && $err == "meshfwd: error: nowhere.yaml: cannot open: No such file or directory" ]]; then
    pass "missing config file"
else
    fail "missing config file" "exit $rc, stderr: $err"
fi

run_in "$tmp" --check -c x.yaml --no-such-option
if [[ $rc -eq 2 ]]; then pass "unknown option"; else fail "unknown option" "exit $rc"; fi

version=$(sed -n "s/^  version : '\([^']*\)'.*/\1/p" "$src/meson.build")
run_in "$tmp" --version
if [[ $rc -eq 0 && $out == "meshfwd $version" ]]; then pass "--version"; else fail "--version" "exit $rc, '$out'"; fi

run_in "$tmp" --help
if [[ $rc -eq 0 ]] && grep -q -- "--cores" <<<"$out" && grep -q -- "--init-key" <<<"$out" && grep -q "Exit codes" <<<"$out"; then
    pass "--help"
else
    fail "--help" "exit $rc"
fi

if [[ $failures -ne 0 ]]; then
    echo "$failures case(s) failed"
    exit 1
fi
echo "all cases passed"
