#!/bin/sh
# tests/run.sh - runs every test and prints "N passed, N failed, N skipped".
#
# Unit-test binaries ($BUILD/tests/test_*) print one PASS:/FAIL:/SKIP: line per
# case. Script tests (tests/*.test.sh) are one case each: exit 0 passes, 77
# skips (the nbdkit convention), anything else fails. TESTS="a b" limits the
# run to names containing one of the words. Set ANTFARM_TEST_TIMEOUT (seconds)
# to change the per-test limit.
BUILD=${BUILD:-build}
export BUILD
TIMEOUT=${ANTFARM_TEST_TIMEOUT:-900}
log=$(mktemp)
pass=0 fail=0 skip=0
failed_names=""

selected() {
	[ -z "$TESTS" ] && return 0
	for w in $TESTS; do
		case "$1" in *"$w"*) return 0 ;; esac
	done
	return 1
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	selected "$t" || continue
	timeout "$TIMEOUT" "$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^PASS: ' "$log"); f=$(grep -c '^FAIL: ' "$log"); s=$(grep -c '^SKIP: ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL: $(basename "$t") (exit $rc)"
		f=1
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	[ "$f" -gt 0 ] && failed_names="$failed_names $(basename "$t")"
done

for t in tests/*.test.sh; do
	[ -f "$t" ] || continue
	selected "$t" || continue
	name=$(basename "$t" .test.sh)
	timeout "$TIMEOUT" sh "$t" >"$log" 2>&1
	rc=$?
	case $rc in
	0) echo "PASS: $name"; pass=$((pass + 1)) ;;
	77) echo "SKIP: $name ($(tail -n 1 "$log"))"; skip=$((skip + 1)) ;;
	*) cat "$log"; echo "FAIL: $name (exit $rc)"; fail=$((fail + 1)); failed_names="$failed_names $name" ;;
	esac
done
rm -f "$log"
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
