#!/bin/sh
# tests/iosched_live.test.sh - `antfarm iosched` live: the block server
# (antfarm-blockserver, and once nbdkit + nbdkit-antfarm-plugin.so) and
# real QEMU guests with the antfarm plugin, one small cell at a time
# (--quick: 20 MB per reader, 1 VM with 2 readers):
#   - deadline, one cell, JSON, served by nbdkit, readers through the guest's
#     page cache (--reader buffered): the last line is one object with
#     aggregate_mb_s, assoc_error, per_process (2 readers, each with its
#     requests and process tag); the server saw the readers' requests;
#   - as-process (O_DIRECT readers, the default) with the lone reader and
#     --plot: faster than even the buffered deadline by a clear margin (anticipation per guest process works only if the
#     tags the plugin publishes tell the two readers apart), the two
#     readers carry different tags, few requests mistagged, a PNG;
#   - deadline with the guests' bfq (low_latency=0) in 1 VM x 2: clearly
#     faster than the buffered deadline cell (a stricter bar than direct
#     deadline: the guest anticipates for its readers);
#   - setup errors are one line (no block server, no nbdkit plugin, a
#     QEMU that is not QEMU);
#   - SIGINT in the middle of a run: status 130, one line, no QEMU or
#     server left, no files left in TMPDIR or the RAM directory.
# Skips (77) when ANTFARM_SKIP_GUEST=1, or without QEMU 10, nbdkit, the
# plugins or the cached guest (guest/build-guest.sh). Takes about a minute
# on an idle 2-core machine.
. "$(dirname "$0")/functions.sh"
requires_antfarm

[ "${ANTFARM_SKIP_GUEST:-0}" = 1 ] && skip "ANTFARM_SKIP_GUEST=1"
requires_prog qemu-system-x86_64
requires_prog nbdkit
requires_prog jq
case $(qemu-system-x86_64 --version 2>/dev/null | head -n 1) in
*"version "[1-9][0-9].*) ;;
*) skip "qemu-system-x86_64 is older than QEMU 10" ;;
esac
[ -f "$BUILD/antfarm-qemu.so" ] || skip "$BUILD/antfarm-qemu.so is not built (libglib2.0-dev)"
[ -x "$BUILD/antfarm-blockserver" ] || skip "$BUILD/antfarm-blockserver is not built"
[ -f "$BUILD/nbdkit-antfarm-plugin.so" ] || skip "$BUILD/nbdkit-antfarm-plugin.so is not built (nbdkit-plugin-dev)"
timeout 900 "$top/guest/build-guest.sh" --quiet >/dev/null 2>"$tmp/guest.err" ||
	skip "no guest: $(tail -n 1 "$tmp/guest.err")"

# A SANITIZE=1 build: QEMU and nbdkit load instrumented plugins, so they
# (and everything else antfarm starts) get the sanitizer runtimes preloaded,
# leak checking off (QEMU and nbdkit leak at exit).
PRELOAD=
for lib in libasan libubsan; do
	l=$(ldd "$BUILD/nbdkit-antfarm-plugin.so" 2>/dev/null |
		awk -v l="$lib" 'index($1, l) == 1 { print $3 }')
	[ -n "$l" ] && PRELOAD="$PRELOAD${PRELOAD:+:}$l"
done
SAN_ENV="AF_TEST=1"
[ -n "$PRELOAD" ] &&
	SAN_ENV="LD_PRELOAD=$PRELOAD ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"

# Private TMPDIR and RAM directory: what is left behind can be seen.
mkdir -p "$tmp/t" "$tmp/shm" || fail "mkdir"
export TMPDIR="$tmp/t"
export ANTFARM_SHM_DIR="$tmp/shm"

# get EXPR: v = jq EXPR on the last line of $tmp/out (fails the test if
# that line is not JSON).
v=
get()
{
	v=$(tail -n 1 "$tmp/out" | jq -r "$1" 2>"$tmp/jq.err") ||
		fail "jq '$1' on the last line: $(head -c 200 "$tmp/jq.err"): $(tail -c 400 "$tmp/out")"
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
leftovers()
{
	[ -z "$(ls -A "$tmp/t")" ] || fail "$1: left in TMPDIR: $(ls -A "$tmp/t")"
	[ -z "$(ls -A "$tmp/shm")" ] || fail "$1: left in the RAM directory: $(ls -A "$tmp/shm")"
	if pgrep -f "$tmp/" >/dev/null 2>&1; then
		fail "$1: processes left: $(pgrep -af "$tmp/" | head -c 300)"
	fi
}

# ---- 1. deadline, one cell (served by nbdkit with our plugin; the other
# cells use the default, antfarm-blockserver) ----
# shellcheck disable=SC2086 # SAN_ENV is several words
run_cmd 900 env $SAN_ENV nice "$ANTFARM" iosched --vms 1 --procs 2 --sched deadline --quick \
	--no-lone --format json --server nbdkit --reader buffered
[ "$rc" -eq 0 ] || fail "deadline cell: status $rc: $(tail -c 400 "$tmp/err")"
[ -s "$tmp/err" ] && fail "deadline cell: stderr not empty: $(head -c 300 "$tmp/err")"
[ "$(tail -n 1 "$tmp/out" | cut -c1)" = "{" ] || fail "last line is not an object"
get .aggregate_mb_s
dl=$v
ge "$dl" 1 || fail "deadline: $dl MB/s"
get .sched
[ "$v" = deadline ] || fail "sched field: $v"
get .simulated
[ "$v" = false ] || fail "simulated field: $v"
get .reader
[ "$v" = buffered ] || fail "reader field: $v"
get '.per_process | length'
[ "$v" = 2 ] || fail "per_process: $v"
get .lone_reader_mb_s
[ "$v" = null ] || fail "--no-lone ran the lone reader: $v"
get .assoc_error
ae=$v
ge 1 "$ae" && ge "$ae" 0 || fail "assoc_error $ae"
# 20 MB in 128 KiB requests: 153 requests per reader, fewer if merged
get '[.per_process[].requests] | min'
[ "$v" -ge 60 ] || fail "the server saw too few requests: $v"
get .mean_request_kb
ge "$v" 16 || fail "mean request $v KiB"
leftovers "deadline cell"
echo "deadline 1x2: $dl MB/s, assoc_error $ae"

# ---- 2. as-process, with the lone reader and the chart ----
# shellcheck disable=SC2086 # SAN_ENV is several words
run_cmd 900 env $SAN_ENV nice "$ANTFARM" iosched --vms 1 --procs 2 --sched as-process --quick \
	--format json --plot "$tmp/fig7.png"
[ "$rc" -eq 0 ] || fail "as-process cell: status $rc: $(tail -c 400 "$tmp/err")"
get .aggregate_mb_s
ap=$v
get .lone_reader_mb_s
lone=$v
get .reader
[ "$v" = direct ] || fail "as-process: reader field: $v"
get .assoc_error
ae=$v
echo "as-process 1x2: $ap MB/s, assoc_error $ae; lone reader $lone MB/s"
ge "$lone" 1 || fail "lone reader $lone MB/s"
get '.per_process[0].tag'
t0=$v
get '.per_process[1].tag'
t1=$v
[ "$t0" != null ] && [ "$t1" != null ] && [ "$t0" != "$t1" ] ||
	fail "the readers' tags are not two processes: $t0 $t1"
ge 0.1 "$ae" || fail "as-process: association error $ae"
ge "$ap" "$(awk -v d="$dl" 'BEGIN { print 1.2 * d }')" ||
	fail "as-process $ap MB/s is not clearly faster than deadline $dl MB/s"
get .antic_hits
[ "$v" -gt 0 ] || fail "no anticipation hits"
[ "$(head -c 4 "$tmp/fig7.png" | od -An -c | tr -d ' ')" = '211PNG' ] ||
	fail "--plot made no PNG"
leftovers "as-process cell"

# ---- 2b. guest bfq (set for throughput) below deadline, 1 VM x 2: the
# guest's own anticipation works when it sees both readers ----
# shellcheck disable=SC2086 # SAN_ENV is several words
run_cmd 900 env $SAN_ENV nice "$ANTFARM" iosched --vms 1 --procs 2 --sched deadline --quick \
	--guest-elevator bfq --no-lone --format json
[ "$rc" -eq 0 ] || fail "bfq cell: status $rc: $(tail -c 400 "$tmp/err")"
get .guest_elevator
[ "$v" = bfq ] || fail "bfq cell: guest_elevator $v"
get .bfq_low_latency
[ "$v" = false ] || fail "bfq cell: bfq_low_latency $v"
get .aggregate_mb_s
bfq=$v
echo "deadline with guest bfq 1x2: $bfq MB/s"
ge "$bfq" "$(awk -v d="$dl" 'BEGIN { print 1.2 * d }')" ||
	fail "guest bfq $bfq MB/s is not clearly faster than deadline $dl MB/s"
leftovers "bfq cell"

# ---- 3. setup errors: one line ----
ANTFARM_BLOCKSERVER=$tmp/none expect_error 1 "$ANTFARM" iosched --quick
grep -q 'no block server' "$tmp/err" || fail "no server: $(cat "$tmp/err")"
ANTFARM_NBDKIT_PLUGIN=$tmp/none.so expect_error 1 "$ANTFARM" iosched --quick --server nbdkit
grep -q 'no block server' "$tmp/err" || fail "no plugin: $(cat "$tmp/err")"
expect_error 2 "$ANTFARM" iosched --quick --server qemu-nbd
ANTFARM_QEMU=/bin/true expect_error 1 "$ANTFARM" iosched --quick --no-lone \
	--vms 1 --procs 1 --sched noop
leftovers "setup errors"

# ---- 4. interrupted ----
# shellcheck disable=SC2086
env $SAN_ENV nice "$ANTFARM" iosched --vms 2 --procs 1 --sched as-vm --mb 200 --no-lone \
	>"$tmp/out" 2>"$tmp/err" &
pid=$!
# Wait until both guests are running (or 120 s).
i=0
while [ "$(pgrep -cf "$tmp/t/.*go[0-9].sock")" -lt 2 ] && [ $i -lt 1200 ]; do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
sleep 2
kill -INT $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 130 ] || fail "interrupted: status $rc: $(cat "$tmp/err")"
check_one_error_line "interrupted run"
grep -q 'interrupted by signal 2' "$tmp/err" || fail "interrupted: $(cat "$tmp/err")"
sleep 1
leftovers "interrupted run"
echo "interrupted run: status 130, nothing left"
exit 0
