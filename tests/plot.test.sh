#!/bin/sh
# tests/plot.test.sh - `antfarm plot`: timeline and lag images from traces
# with ground truth (made by `antfarm synth`), the CSV data against `antfarm
# eval`, and bad input: unreadable or corrupt traces, bad command lines, no
# gnuplot, a failing gnuplot, an unwritable output.
. "$(dirname "$0")/functions.sh"

requires_antfarm
requires_prog gnuplot
requires_prog jq

# The plots' temporary directories go here, to check none is left.
TMPDIR=$tmp/tmpdir
export TMPDIR
mkdir "$TMPDIR" || fail "mkdir $TMPDIR"

# check_png FILE: PNG signature, an IHDR chunk, and more than a blank
# picture's worth of bytes.
check_png()
{
	[ -f "$1" ] || fail "$1 was not written"
	sig=$(head -c 16 "$1" | od -An -tx1 | tr -d ' \n')
	case $sig in
	89504e470d0a1a0a????????49484452) ;;
	*) fail "$1 is not a PNG (starts $sig)" ;;
	esac
	sz=$(file_size "$1")
	[ "$sz" -gt 8000 ] || fail "$1 is only $sz bytes"
}

# Traces: Linux 2.6 fork+exec (two address spaces per process) and a
# two-vCPU compile (overlapping processes).
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload forkexec -n 60 \
	--lifetime-ms 300 --interval-ms 20 -o "$tmp/fe.trace"
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload compile -n 80 \
	--vcpus 2 -o "$tmp/cc.trace"

# --- timeline ---
expect_rc 0 "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/fe.png" \
	--data "$tmp/fe.csv"
[ -s "$tmp/err" ] && fail "timeline wrote to stderr: $(head -c 300 "$tmp/err")"
check_png "$tmp/fe.png"
grep -q '^timeline: .* points over .* s; live processes max: OS 16, ' "$tmp/out" ||
	fail "timeline summary: $(cat "$tmp/out")"
[ "$(head -n 1 "$tmp/fe.csv")" = "time_s,os_processes,inferred_processes,difference" ] ||
	fail "timeline CSV header: $(head -n 1 "$tmp/fe.csv")"
# 60 processes, each reported created and exited, each seen as two
# address spaces: at least 4 changes each; every count back to 0 at END;
# difference = inferred - os on every row (the paper's sign); counts never negative.
awk -F, 'NR > 1 {
		n++
		if ($4 != $3 - $2) bad = "difference column wrong at " NR
		if ($2 < 0 || $3 < 0) bad = "negative count at " NR
		if (NR > 2 && $1 < t) bad = "time goes back at " NR
		t = $1; last = $2 "," $3
		if ($2 > m) m = $2
	}
	END {
		if (bad != "") { print bad; exit 1 }
		if (n < 240) { print "only " n " rows"; exit 1 }
		if (last != "0,0") { print "ends at " last; exit 1 }
		if (m != 16) { print "OS max " m; exit 1 }
	}' "$tmp/fe.csv" >"$tmp/chk" || fail "timeline CSV: $(cat "$tmp/chk")"

expect_rc 0 "$ANTFARM" plot --kind timeline -o "$tmp/cc.png" "$tmp/cc.trace"
check_png "$tmp/cc.png"

# --- lag: the pairs drawn are the ones antfarm eval scores ---
for t in fe cc; do
	expect_rc 0 "$ANTFARM" plot "$tmp/$t.trace" --kind lag -o "$tmp/$t-lag.png" \
		--data "$tmp/$t-lag.csv"
	[ -s "$tmp/err" ] && fail "lag ($t) wrote to stderr: $(head -c 300 "$tmp/err")"
	check_png "$tmp/$t-lag.png"
	expect_rc 0 "$ANTFARM" eval --format json "$tmp/$t.trace"
	for k in create exit; do
		want_n=$(jq -r ".lag.$k.n" "$tmp/out")
		want_mean=$(jq -r ".lag.$k.mean_us" "$tmp/out")
		want_max=$(jq -r ".lag.$k.max_us" "$tmp/out")
		awk -F, -v k="$k" -v n="$want_n" -v mean="$want_mean" -v max="$want_max" '
			NR > 1 && $1 == k { c++; s += $3; if (c == 1 || $3 > m) m = $3 }
			END {
				if (c != n) { print k ": " c " rows, eval says " n; exit 1 }
				d = s / c * 1000 - mean; if (d < 0) d = -d
				if (d > 0.01) { print k ": mean " s / c * 1000 " us, eval " mean; exit 1 }
				d = m * 1000 - max; if (d < 0) d = -d
				if (d > 0.01) { print k ": max " m * 1000 " us, eval " max; exit 1 }
			}' "$tmp/$t-lag.csv" >"$tmp/chk" || fail "lag CSV ($t): $(cat "$tmp/chk")"
	done
done
[ "$(head -n 1 "$tmp/fe-lag.csv")" = "kind,os_time_s,lag_ms,pid,ppid,asid" ] ||
	fail "lag CSV header: $(head -n 1 "$tmp/fe-lag.csv")"

# --data alone needs no gnuplot.
expect_rc 0 env ANTFARM_GNUPLOT=/nonexistent/gnuplot "$ANTFARM" plot \
	"$tmp/fe.trace" --kind lag --data "$tmp/only.csv"
cmp -s "$tmp/only.csv" "$tmp/fe-lag.csv" || fail "--data alone differs"

# --- bad command lines ---
expect_error 2 "$ANTFARM" plot "$tmp/fe.trace"
expect_error 2 "$ANTFARM" plot -o "$tmp/x.png"
expect_error 2 "$ANTFARM" plot "$tmp/fe.trace" "$tmp/cc.trace" -o "$tmp/x.png"
expect_error 2 "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/x.png" --kind pie
expect_error 2 "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/x.png" --bogus
expect_error 2 "$ANTFARM" plot "$tmp/fe.trace" -o
[ -e "$tmp/x.png" ] && fail "a bad command line wrote an image"

# --- bad traces ---
expect_error 1 "$ANTFARM" plot "$tmp/missing.trace" -o "$tmp/x.png"
expect_error 1 "$ANTFARM" plot "$tmp" -o "$tmp/x.png"
det_bytes 77 4000 >"$tmp/junk.trace"
expect_error 1 "$ANTFARM" plot "$tmp/junk.trace" -o "$tmp/x.png"
sz=$(file_size "$tmp/fe.trace")
head -c $((sz / 2)) "$tmp/fe.trace" >"$tmp/half.trace"
expect_error 1 "$ANTFARM" plot "$tmp/half.trace" -o "$tmp/x.png" --kind lag
: >"$tmp/empty.trace"
expect_error 1 "$ANTFARM" plot "$tmp/empty.trace" -o "$tmp/x.png"
[ -e "$tmp/x.png" ] && fail "a bad trace left an image"

# Damaged traces (one byte changed, 40 places): the data is written or the
# trace is refused in one line; never a crash (run_cmd fails on signals).
i=1
while [ "$i" -le 40 ]; do
	off=$(( (i * 7919 + 13) % sz ))
	cp "$tmp/fe.trace" "$tmp/m.trace"
	printf '\377' | dd of="$tmp/m.trace" bs=1 seek="$off" conv=notrunc 2>/dev/null
	for k in timeline lag; do
		run_cmd 60 "$ANTFARM" plot "$tmp/m.trace" --kind $k --data "$tmp/m.csv"
		case $rc in
		0) ;;
		1) check_one_error_line "damaged at $off, $k" ;;
		*) fail "damaged at $off, $k: exit $rc" ;;
		esac
	done
	i=$((i + 1))
done

# --- gnuplot missing or failing; output not writable ---
expect_error 1 env ANTFARM_GNUPLOT=/nonexistent/gnuplot "$ANTFARM" plot \
	"$tmp/fe.trace" -o "$tmp/x.png"
grep -q 'gnuplot-nox' "$tmp/err" || fail "no install hint: $(cat "$tmp/err")"
mkdir "$tmp/nogp"
expect_error 1 env PATH="$tmp/nogp" "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/x.png"
grep -q 'gnuplot not found' "$tmp/err" || fail "PATH without gnuplot: $(cat "$tmp/err")"
printf '#!/bin/sh\necho "line 1: broken on purpose" >&2\nexit 1\n' >"$tmp/badgp"
chmod +x "$tmp/badgp"
expect_error 1 env ANTFARM_GNUPLOT="$tmp/badgp" "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/x.png"
grep -q 'gnuplot failed (status 1): line 1: broken on purpose' "$tmp/err" ||
	fail "failing gnuplot: $(cat "$tmp/err")"
printf '#!/bin/sh\nexit 0\n' >"$tmp/nopng"
chmod +x "$tmp/nopng"
expect_error 1 env ANTFARM_GNUPLOT="$tmp/nopng" "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/x.png"
grep -q 'no PNG image' "$tmp/err" || fail "gnuplot without output: $(cat "$tmp/err")"
[ -e "$tmp/x.png" ] && fail "a failed gnuplot left an image"
expect_error 1 "$ANTFARM" plot "$tmp/fe.trace" -o "$tmp/nodir/x.png"
expect_error 1 "$ANTFARM" plot "$tmp/fe.trace" --data "$tmp/nodir/x.csv"
# No temporary directory left behind by any of the above.
[ -z "$(ls -A "$TMPDIR")" ] || fail "left in TMPDIR: $(ls -A "$TMPDIR")"
exit 0
