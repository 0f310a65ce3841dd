#!/bin/sh
# tests/guest_workloads.test.sh - builds the guest workloads (afwork) for the
# host and runs each command with tiny parameters: every command must make
# exactly the processes asked for, have them all exit 0, and report so; bad
# usage must exit 2. No QEMU needed.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
t=$(mktemp -d) || exit 1
trap 'rm -rf "$t"' EXIT
fail() { echo "guest_workloads: $*"; exit 1; }

"$CC" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$t/afwork" \
	"$ROOT/guest/workloads/afwork.c" || fail "afwork does not build"
A=$t/afwork

# expect "COMMAND..." "summary prefix": runs, checks status 0 and the line.
expect() {
	want=$1
	shift
	out=$("$A" "$@") || fail "afwork $* exited $?: $out"
	case $out in
	"$want"*) ;;
	*) fail "afwork $*: got '$out', want '$want...'" ;;
	esac
}
expect "afwork fork: created 7 exited-ok 7 exited-bad 0 fork-failed 0" fork -n 7 -r 500 -t 0.01
expect "afwork fork: created 3 exited-ok 3 exited-bad 0" fork -n 3 -r 500 -t 0.01 -b
expect "afwork forkexec: created 6 exited-ok 6 exited-bad 0" forkexec -n 6 -r 500 -t 0.01
expect "afwork vforkexec: created 5 exited-ok 5 exited-bad 0" vforkexec -n 5 -r 500 -t 0.01
expect "afwork lag: created 4 exited-ok 4 exited-bad 0" lag -k 2 -n 4 -i 0.005 -s 0.02
expect "afwork lag: created 3 exited-ok 3 exited-bad 0" lag -k 0 -n 3 -i 0 -s 0 -c forkexec
expect "afwork pagetouch: created 2 exited-ok 2 exited-bad 0" pagetouch -m 4 -n 2
expect "afwork pagetouch: created 2 exited-ok 2 exited-bad 0" pagetouch -m 4 -n 2 -f
"$A" touch -m 2 || fail "afwork touch failed"
"$A" true || fail "afwork true failed"

# Rate: 10 processes at 100/s take at least 0.09 s.
out=$("$A" fork -n 10 -r 100 -t 0) || fail "afwork fork -r 100 failed"
el=$(echo "$out" | sed -n 's/.* elapsed \([0-9.]*\) s.*/\1/p')
awk -v e="$el" 'BEGIN { exit !(e >= 0.085) }' || fail "rate not honoured: $out"

# Spinners of `lag` must be gone afterwards (they are our children: killed).
"$A" lag -k 3 -n 1 -s 0 >/dev/null || fail "lag -k 3 failed"
pgrep -P $$ -f "$A" >/dev/null && fail "lag left processes behind"

for bad in "fork -n" "fork -n -1" "fork -r 0" "fork -x" "lag -c nope" "nope" "sleep"; do
	# shellcheck disable=SC2086
	"$A" $bad >/dev/null 2>&1
	rc=$?
	[ "$rc" = 2 ] || fail "afwork $bad: exit $rc, want 2"
done
"$A" >/dev/null 2>&1
[ $? = 2 ] || fail "afwork without a command should exit 2"
echo "guest_workloads: ok"
