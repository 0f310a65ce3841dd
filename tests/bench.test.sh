#!/bin/sh
# tests/bench.test.sh - the paper's evaluation experiments (bench/lag,
# bench/timeline, bench/completeness) at a tiny scale on a live x86_64
# guest: each must finish, write its files into $ANTFARM_BENCH_OUT (not
# the source tree), and print one JSON object as its last line with the
# figures docs/results.md quotes, with no false negatives. Bad options are
# refused with a non-zero status. About 25 s on an idle 2-core machine.
#
# Skips (77) when ANTFARM_SKIP_GUEST=1, without the plugin, QEMU 10, the
# cached guest, jq or gnuplot.
. "$(dirname "$0")/functions.sh"

[ "${ANTFARM_SKIP_GUEST:-0}" = 1 ] && skip "ANTFARM_SKIP_GUEST=1"
requires_antfarm
[ -f "$BUILD/antfarm-qemu.so" ] || skip "no $BUILD/antfarm-qemu.so (the plugin needs libglib2.0-dev)"
requires_prog jq
requires_prog gnuplot
case $(qemu-system-x86_64 --version 2>/dev/null | head -n 1) in
*"version "[1-9][0-9].*) ;;
*) skip "qemu-system-x86_64 is missing or older than QEMU 10" ;;
esac
timeout 900 "$top/guest/build-guest.sh" --quiet >/dev/null 2>"$tmp/guest.err" ||
	skip "no guest: $(tail -n 1 "$tmp/guest.err")"

export ANTFARM_BENCH_OUT="$tmp/out.d"
export BUILD

# last NAME: the last line of $tmp/out as JSON into $tmp/NAME.json.
last()
{
	tail -n 1 "$tmp/out" >"$tmp/$1.json"
	jq -e . "$tmp/$1.json" >/dev/null 2>&1 ||
		fail "$1: last line is not JSON: $(tail -c 300 "$tmp/out")"
}
# j NAME EXPR: jq EXPR on NAME's JSON (fails if it is null or false).
j()
{
	jq -e -r "$2" "$tmp/$1.json" 2>/dev/null ||
		fail "$1: $2 is not true: $(head -c 400 "$tmp/$1.json")"
}
png()
{
	[ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG' ] ||
		fail "$1 is not a PNG"
}

# ---- bad options: refused before anything runs ----
for b in lag timeline completeness; do
	run_cmd 30 sh "$top/bench/$b" --no-such-option
	[ "$rc" -ne 0 ] || fail "bench/$b accepted --no-such-option"
done
run_cmd 30 sh "$top/bench/completeness" --configs nosuch
[ "$rc" -ne 0 ] || fail "bench/completeness accepted an unknown configuration"
[ ! -e "$ANTFARM_BENCH_OUT" ] || fail "a refused run wrote $ANTFARM_BENCH_OUT"

# ---- lag: K = 0, 10 test processes ----
run_cmd 600 sh "$top/bench/lag" --quick -k 0 -n 10
[ "$rc" -eq 0 ] || fail "bench/lag: status $rc: $(tail -c 400 "$tmp/err")"
last lag
j lag '.bench == "lag"' >/dev/null
j lag '.failed == 0' >/dev/null
j lag '.runs | length == 1' >/dev/null
j lag '.runs[0].fn_create == 0 and .runs[0].fn_exit == 0' >/dev/null
j lag '.runs[0].test_create_n == 10 and .runs[0].test_exit_n == 10' >/dev/null
j lag '.runs[0].create_mean_us > 0 and .runs[0].create_max_us >= .runs[0].create_mean_us' >/dev/null
png "$ANTFARM_BENCH_OUT/lag.png"
[ -s "$ANTFARM_BENCH_OUT/lag.csv" ] && [ -s "$ANTFARM_BENCH_OUT/lag.md" ] ||
	fail "bench/lag wrote no CSV or table"

# ---- timeline: forkexec at the quick scale ----
run_cmd 600 sh "$top/bench/timeline" --quick --workload forkexec
[ "$rc" -eq 0 ] || fail "bench/timeline: status $rc: $(tail -c 400 "$tmp/err")"
last timeline
j timeline '.bench == "timeline" and .ok' >/dev/null
j timeline '.fn_create == 0 and .fn_exit == 0' >/dev/null
j timeline '.os_create > 0 and .inferred_create >= .os_create' >/dev/null
# (max_abs_diff >= 0: the field is there and a number)
j timeline '.os_max >= 1 and .max_abs_diff >= 0' >/dev/null
png "$ANTFARM_BENCH_OUT/timeline.png"

# ---- completeness: one configuration, one workload ----
run_cmd 600 sh "$top/bench/completeness" --quick --configs x86_64 \
	--workloads fork --no-compile -n 20
[ "$rc" -eq 0 ] || fail "bench/completeness: status $rc: $(tail -c 400 "$tmp/err")"
last completeness
j completeness '.bench == "completeness" and .failed == 0' >/dev/null
j completeness '.results | length == 1' >/dev/null
j completeness '.results[0].fn_create == 0 and .results[0].fn_exit == 0' >/dev/null
j completeness '.results[0].inferred_create == .results[0].os_as_create' >/dev/null
j completeness '.results[0].os_create >= 20' >/dev/null
[ -s "$ANTFARM_BENCH_OUT/completeness.csv" ] || fail "bench/completeness wrote no CSV"

echo "lag, timeline and completeness: JSON last lines, files, 0 false negatives"
exit 0
