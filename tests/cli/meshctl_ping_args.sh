#!/bin/bash
# meshctl ping refuses bad options and configs with exit 2 and a clear message, and gives up
# with exit 1 within --timeout when nobody answers. No root: only 127.0.0.1 is used.
# Args: $1 build dir, $2 source dir.
set -euo pipefail

build=$1
meshctl=$build/tools/meshctl
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
umask 077

fail() { echo "FAIL: $*" >&2; exit 1; }

"$meshctl" genkey >"$tmp/a.key"
peer=$("$meshctl" genkey | "$meshctl" pubkey)
"$meshctl" genpsk >"$tmp/psk"
ok_args=(--private-key-file "$tmp/a.key" --address 10.0.0.1 --peer-key "$peer" --endpoint 127.0.0.1:9)

# expect RC PATTERN ARGS...: runs `meshctl ping ARGS`, checks the exit status and stderr.
expect() {
    local want=$1 pattern=$2
    shift 2
    set +e
    timeout 20 "$meshctl" ping "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    set -e
    [[ $rc -eq $want ]] || fail "ping $*: exit $rc, want $want; stderr: $(cat "$tmp/err")"
    grep -q -- "$pattern" "$tmp/err" || fail "ping $*: stderr lacks '$pattern': $(cat "$tmp/err")"
}

expect 2 "required" --address 10.0.0.1 10.0.0.2
expect 2 "cannot open key file" --private-key-file "$tmp/nope" "${ok_args[@]:2}" 10.0.0.2
cp "$tmp/a.key" "$tmp/open.key"
chmod 644 "$tmp/open.key"
expect 2 "must not be accessible by group or others" --private-key-file "$tmp/open.key" "${ok_args[@]:2}" 10.0.0.2
echo "not a key" >"$tmp/bad.key"
expect 2 "does not hold one base64 key" --private-key-file "$tmp/bad.key" "${ok_args[@]:2}" 10.0.0.2
chmod 640 "$tmp/psk"
expect 2 "psk-file" "${ok_args[@]}" --psk-file "$tmp/psk" 10.0.0.2
chmod 600 "$tmp/psk"
expect 2 "not a WireGuard public key" --private-key-file "$tmp/a.key" --address 10.0.0.1 \
    --peer-key "abc" --endpoint 127.0.0.1:9 10.0.0.2
expect 2 "same IP version" "${ok_args[@]}" fd00::2
expect 2 "target" "${ok_args[@]}" 10.0.0.300
expect 2 "endpoint" --private-key-file "$tmp/a.key" --address 10.0.0.1 --peer-key "$peer" \
    --endpoint 127.0.0.1 10.0.0.2
expect 2 "interval" "${ok_args[@]}" --interval 1 10.0.0.2
expect 2 "timeout" "${ok_args[@]}" --timeout soon 10.0.0.2
expect 2 "count" "${ok_args[@]}" --count 0 10.0.0.2
expect 2 "never rekeys" "${ok_args[@]}" --count 200 --interval 1s 10.0.0.2

# Nobody listens on 127.0.0.1:<port>: exit 1 within the timeout, naming our public key.
ours=$("$meshctl" pubkey <"$tmp/a.key")
port=$((20000 + RANDOM % 20000))
t0=$SECONDS
expect 1 "no handshake response from 127.0.0.1:$port within 1s" --private-key-file "$tmp/a.key" \
    --address 10.0.0.1 --peer-key "$peer" --endpoint "127.0.0.1:$port" --timeout 1s 10.0.0.2
(( SECONDS - t0 <= 4 )) || fail "gave up after $((SECONDS - t0))s with --timeout 1s"
grep -qF "$ours" "$tmp/err" || fail "message does not name our public key"
grep -q "port unreachable" "$tmp/err" || fail "message does not mention the refused port"

# A silent peer: the initiation is retransmitted after REKEY_TIMEOUT (5 s) + up to 333 ms of
# jitter, each time a fresh 148-byte type-1 message with a new sender index.
python3 - "$meshctl" "$tmp/a.key" "$peer" <<'PY' || fail "initiation retransmission"
import socket, struct, subprocess, sys, time
meshctl, key, peer = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.2)
port = s.getsockname()[1]
p = subprocess.Popen([meshctl, "ping", "--private-key-file", key, "--address", "10.0.0.1",
                      "--peer-key", peer, "--endpoint", f"127.0.0.1:{port}", "--timeout", "6s", "10.0.0.2"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seen = []
deadline = time.monotonic() + 10
while time.monotonic() < deadline and p.poll() is None:
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    seen.append((time.monotonic(), data))
rc = p.wait(timeout=5)
assert rc == 1, f"exit {rc}"
assert len(seen) == 2, f"{len(seen)} initiations in 6 s, want 2"
for _, d in seen:
    assert len(d) == 148 and d[:4] == b"\x01\0\0\0", f"not an initiation: {len(d)} bytes"
gap = seen[1][0] - seen[0][0]
assert 4.9 <= gap <= 5.6, f"retransmitted after {gap:.2f} s"
assert seen[0][1][4:8] != seen[1][1][4:8], "same sender index twice"
print(f"retransmit after {gap:.2f} s")
PY

"$meshctl" ping --help | grep -q "Exit codes" || fail "ping --help documents no exit codes"
echo "PASS: meshctl ping argument checks"
