#!/bin/bash
# meshctl genkey/pubkey/genpsk are byte-compatible with wg(8)'s.
# Args: $1 build dir, $2 source dir. Needs `wg` (wireguard-tools); exits 77 (skipped) without it.
set -euo pipefail

build=$1
meshctl=$build/tools/meshctl
command -v wg >/dev/null || { echo "SKIP: wg (wireguard-tools) not installed"; exit 77; }

tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
umask 077

fail() { echo "FAIL: $*" >&2; exit 1; }

# Bytes of a base64 key as decimal numbers, one per line.
key_bytes() { printf '%s' "$1" | base64 -d | od -An -v -tu1 | tr -s ' ' '\n' | sed '/^$/d'; }

for i in $(seq 1 20); do
    priv=$("$meshctl" genkey)
    [[ ${#priv} -eq 44 ]] || fail "genkey printed ${#priv} characters: '$priv'"
    [[ $("$meshctl" genkey | wc -c) -eq 45 ]] || fail "genkey output is not 44 characters + newline"
    ours=$(printf '%s\n' "$priv" | "$meshctl" pubkey)
    theirs=$(printf '%s\n' "$priv" | wg pubkey)
    [[ $ours == "$theirs" ]] || fail "pubkey of $i-th meshctl key: meshctl $ours, wg $theirs"

    # Clamped as RFC 7748 decodeScalar25519: low 3 bits clear, top bit clear, bit 254 set.
    mapfile -t bytes < <(key_bytes "$priv")
    [[ ${#bytes[@]} -eq 32 ]] || fail "genkey decodes to ${#bytes[@]} bytes"
    (( (bytes[0] & 7) == 0 )) || fail "genkey: byte 0 not clamped ($priv)"
    (( (bytes[31] & 192) == 64 )) || fail "genkey: byte 31 not clamped ($priv)"

    wgpriv=$(wg genkey)
    ours=$(printf '%s\n' "$wgpriv" | "$meshctl" pubkey)
    theirs=$(printf '%s\n' "$wgpriv" | wg pubkey)
    [[ $ours == "$theirs" ]] || fail "pubkey of wg key: meshctl $ours, wg $theirs"
    # Byte for byte, newline included.
    cmp <(printf '%s\n' "$wgpriv" | "$meshctl" pubkey) <(printf '%s\n' "$wgpriv" | wg pubkey) \
        || fail "pubkey output differs in bytes"
done

# An unclamped key: both clamp when deriving, so both agree.
raw=$(head -c 32 /dev/urandom | base64)
[[ $(echo "$raw" | "$meshctl" pubkey) == $(echo "$raw" | wg pubkey) ]] || fail "unclamped key: pubkeys differ"
# No trailing newline is fine for both.
[[ $(printf '%s' "$raw" | "$meshctl" pubkey) == $(printf '%s' "$raw" | wg pubkey) ]] || fail "no newline: pubkeys differ"

psk=$("$meshctl" genpsk)
[[ ${#psk} -eq 44 ]] || fail "genpsk printed ${#psk} characters"
[[ $(key_bytes "$psk" | wc -l) -eq 32 ]] || fail "genpsk does not decode to 32 bytes"
[[ $("$meshctl" genpsk) != "$psk" ]] || fail "two genpsk runs gave the same key"

# Bad input: meshctl rejects exactly what wg rejects, with a message and a non-zero exit.
good=$(wg genkey)
bad_inputs=(
    ""
    "short"
    "${good:0:43}"
    "${good:0:42}!="
    "${good} trailing"
    "${good}${good}"
    "${good:0:43}A"
    "$(head -c 33 /dev/urandom | base64)"
)
for input in "${bad_inputs[@]}"; do
    if printf '%s\n' "$input" | wg pubkey >/dev/null 2>&1; then
        fail "test bug: wg accepted '$input'"
    fi
    set +e
    out=$(printf '%s\n' "$input" | "$meshctl" pubkey 2>"$tmp/err")
    rc=$?
    set -e
    [[ $rc -ne 0 ]] || fail "meshctl pubkey accepted '$input' (printed $out)"
    [[ -z $out ]] || fail "meshctl pubkey printed '$out' for bad input '$input'"
    grep -q "Key is not the correct length or format\|Trailing characters" "$tmp/err" \
        || fail "no clear message for '$input': $(cat "$tmp/err")"
done
# A key with non-zero padding bits in its last character is not canonical base64.
noncanon="${good:0:42}$(printf '%s' "${good:42:1}" | tr 'AEIMQUYcgkosw048' 'BFJNRVZdhlptx159')="
if ! printf '%s\n' "$noncanon" | wg pubkey >/dev/null 2>&1; then
    if printf '%s\n' "$noncanon" | "$meshctl" pubkey >/dev/null 2>&1; then
        fail "meshctl accepted non-canonical '$noncanon' that wg rejects"
    fi
fi

# Usage errors exit 2.
set +e
"$meshctl" nosuchcommand >/dev/null 2>&1; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "unknown subcommand exited $rc, not 2"

echo "PASS: meshctl keys match wg"
