#!/bin/bash
# tests/netns/lib.sh's requirement checks: a missing program skips (exit 77) on a developer's
# machine but fails (exit 1, with a message) when CI is set, so CI never passes with netns tests
# quietly skipped. Runs lib.sh's helpers in subshells; needs no root. Args: $1 build dir, $2 source dir.
set -uo pipefail
src=$(cd "$2" && pwd)
failures=0
check() {  # check NAME EXPECTED_RC EXPECTED_TEXT CI_VALUE
    local out rc
    out=$(CI=$4 bash -c 'set -euo pipefail; . "$1/tests/netns/lib.sh"; netns_require_programs sh no-such-program-meshfwd-test' \
        _ "$src" 2>&1)
    rc=$?
    if [[ $rc -eq $2 ]] && grep -qF -- "$3" <<<"$out"; then
        echo "ok   - $1"
    else
        echo "FAIL - $1: exit $rc, output: $out"
        failures=$((failures + 1))
    fi
}
check "missing program without CI: skipped" 77 "SKIP: no-such-program-meshfwd-test not installed" ""
check "missing program with CI=false: skipped" 77 "SKIP: no-such-program-meshfwd-test not installed" false
check "missing program with CI=true: failure" 1 \
    "FAIL: no-such-program-meshfwd-test not installed (CI=true: a missing requirement is a failure in CI, not a skip)" true
exit $((failures != 0))
