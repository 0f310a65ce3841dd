# tests/functions.sh - shared helpers for the script tests (tests/*.test.sh).
#
# A test starts with
#     . "$(dirname "$0")/functions.sh"
# and then has:
#   $top      the top of the source tree (absolute)
#   $BUILD    the build directory (absolute; from the environment, default
#             "build", relative to $top)
#   $ANTFARM  the antfarm command ($BUILD/antfarm)
#   $tmp      a private temporary directory, removed on exit
# and these functions:
#   skip MSG...            exit 77 (skipped) saying why
#   fail MSG...            exit 1 saying what went wrong
#   requires CMD [ARG...]  skip unless CMD runs successfully (nbdkit style)
#   requires_prog NAME     skip unless NAME is on $PATH
#   requires_antfarm       skip unless $ANTFARM has been built
#   requires_qemu10        skip unless QEMU 10 is installed or scripts/deps.sh
#                          can install it
#   requires_jget          define jget FILE PATH (a member of the JSON object
#                          in FILE, by jq or else python3); skip without both
#   cleanup_fn FUNC        call shell function FUNC on exit (before $tmp goes)
#   run_cmd SECS CMD...    run CMD with a time limit; stdout to $tmp/out,
#                          stderr to $tmp/err, status in $rc
#   expect_rc N CMD...     run_cmd 60 CMD, fail unless the status is N
#   expect_error N CMD...  expect_rc N, and stderr is exactly one line
#                          starting "antfarm: "
#   det_bytes SEED N       write N (<= 30000) deterministic pseudo-random
#                          bytes to stdout
#   file_size FILE         print FILE's size in bytes
# Tests run with the current directory at $top (tests/run.sh does that).
# A test exits 0 for pass, 77 for skip, anything else for failure.

set -u

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in
/*) ;;
*) BUILD=$top/$BUILD ;;
esac
ANTFARM=${ANTFARM:-$BUILD/antfarm}
af_test_name=$(basename "$0" .test.sh)

# No core files from deliberately hostile inputs.
ulimit -c 0 2>/dev/null || :

skip()
{
	echo "$af_test_name: skipped: $*"
	exit 77
}

fail()
{
	echo "$af_test_name: FAIL: $*" >&2
	exit 1
}

requires()
{
	"$@" >/dev/null 2>&1 || skip "requires: $*"
}

requires_prog()
{
	command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"
}

requires_antfarm()
{
	[ -x "$ANTFARM" ] || skip "$ANTFARM is not built"
}

af_cleanup_fns=""
cleanup_fn()
{
	af_cleanup_fns="$af_cleanup_fns $1"
}

af_cleanup()
{
	af_status=$?
	trap - EXIT INT TERM HUP
	for af_fn in $af_cleanup_fns; do
		"$af_fn" || :
	done
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
	exit "$af_status"
}
trap af_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmp=$(mktemp -d "${TMPDIR:-/tmp}/antfarm-$af_test_name.XXXXXX") ||
	fail "cannot make a temporary directory"

rc=0
run_cmd()
{
	af_secs=$1
	shift
	rc=0
	timeout -k 5 "$af_secs" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail "timed out after ${af_secs}s: $*"
	fi
	if [ "$rc" -gt 128 ]; then
		fail "killed by signal $((rc - 128)): $* ($(head -c 300 "$tmp/err"))"
	fi
}

expect_rc()
{
	af_want=$1
	shift
	run_cmd 60 "$@"
	if [ "$rc" -ne "$af_want" ]; then
		fail "exit status $rc, wanted $af_want: $* (stderr: $(head -c 300 "$tmp/err"))"
	fi
}

expect_error()
{
	expect_rc "$@"
	check_one_error_line "$*"
}

# Checks that $tmp/err is exactly one line starting "antfarm: ".
check_one_error_line()
{
	af_lines=$(wc -l <"$tmp/err")
	if [ "$af_lines" -ne 1 ]; then
		fail "$af_lines lines on stderr, wanted 1: $1: $(head -c 300 "$tmp/err")"
	fi
	if [ "$(tail -c 1 "$tmp/err" | od -An -c | tr -d ' ')" != '\n' ]; then
		fail "stderr does not end in a newline: $1"
	fi
	case $(cat "$tmp/err") in
	"antfarm: "?*) ;;
	*) fail "stderr does not start with 'antfarm: ': $1: $(head -c 300 "$tmp/err")" ;;
	esac
}

# N bytes from a Park-Miller generator seeded with SEED (1..2^31-2), the
# same on every machine (awk does the arithmetic exactly in doubles).
det_bytes()
{
	# shellcheck disable=SC2059
	printf "$(awk -v seed="$1" -v n="$2" 'BEGIN {
		x = seed % 2147483647; if (x <= 0) x = 1
		for (i = 0; i < n; i++) {
			x = (x * 16807) % 2147483647
			printf "\\%03o", x % 256
		}
	}')"
}

file_size()
{
	wc -c <"$1" | tr -d ' '
}

requires_qemu10()
{
	if ! sh "$top/scripts/deps.sh" test >"$tmp/deps.out" 2>&1; then
		af_v=$(qemu-system-x86_64 --version 2>/dev/null |
			sed -n 's/.*version \([0-9]*\)\..*/\1/p')
		[ "${af_v:-0}" -ge 10 ] 2>/dev/null ||
			skip "no QEMU 10 and it cannot be installed: $(tail -n 1 "$tmp/deps.out")"
	fi
}

requires_jget()
{
	if command -v jq >/dev/null 2>&1; then
		jget() { jq -r "$2" "$1"; }
	elif command -v python3 >/dev/null 2>&1; then
		jget() {
			python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].lstrip(".").split("."):
    v = v[k] if v is not None else None
print("null" if v is None else v)' "$1" "$2"
		}
	else
		skip "neither jq nor python3 to read JSON"
	fi
}
