#!/bin/sh
# tests/hostile.test.sh - antfarm against bad trace files: valid traces cut
# at many offsets, pseudo-random bytes (alone and after a valid header),
# absurd lengths, an empty file, a missing file and a directory. Every
# reading command (replay, eval, dump) must exit 1 with exactly one line on
# stderr, within a time limit, without being killed by a signal; a trace cut
# exactly at a record boundary is still incomplete (the format ends with an
# end record), so it fails the same way.
. "$(dirname "$0")/functions.sh"
requires_antfarm

LIMIT=20 # seconds for one command on one file

# Under ASan the address space is huge; elsewhere cap memory so that an
# allocation driven by a hostile length would fail here rather than pass.
if ! grep -q __asan_init "$ANTFARM" 2>/dev/null; then
	ulimit -v 1048576 2>/dev/null || :
fi

# expect_bad FILE: every reader rejects FILE properly.
n_checked=0
expect_bad()
{
	for af_c in replay eval dump; do
		run_cmd "$LIMIT" "$ANTFARM" "$af_c" "$1"
		[ "$rc" -eq 1 ] ||
			fail "$af_c $1 ($2): exit $rc, wanted 1: $(head -c 300 "$tmp/err")"
		check_one_error_line "$af_c $1 ($2)"
	done
	n_checked=$((n_checked + 1))
}

# ---- valid traces to start from ----
expect_rc 0 "$ANTFARM" synth --os linux2.4 --workload fork -n 2 -o "$tmp/x86.trace"
expect_rc 0 "$ANTFARM" synth --os sparc-linux --workload fork -n 3 -o "$tmp/sparc.trace"
for t in "$tmp/x86.trace" "$tmp/sparc.trace"; do
	for c in replay eval dump; do
		expect_rc 0 "$ANTFARM" "$c" "$t"
		[ -s "$tmp/err" ] && fail "$c $t: wrote to stderr: $(head -c 300 "$tmp/err")"
	done
done

# ---- nothing there ----
: >"$tmp/empty"
expect_bad "$tmp/empty" "empty file"
expect_bad "$tmp/no-such-file" "missing file"
mkdir "$tmp/dir"
expect_bad "$tmp/dir" "directory"

# ---- truncation ----
# Cut each trace at every offset in its first 100 bytes (the header and the
# first records), at the first 50 record boundaries and one byte after each,
# at the end record, and at 25 evenly spread offsets.
for t in "$tmp/x86.trace" "$tmp/sparc.trace"; do
	size=$(file_size "$t")
	"$ANTFARM" dump "$t" | sed -n 's/^@\([0-9]*\) .*/\1/p' >"$tmp/offsets" ||
		fail "dump $t"
	{
		i=0
		while [ "$i" -lt 100 ] && [ "$i" -lt "$size" ]; do
			echo "$i"
			i=$((i + 1))
		done
		head -n 50 "$tmp/offsets" | awk '{ print $1; print $1 + 1 }'
		tail -n 1 "$tmp/offsets"
		awk -v s="$size" 'BEGIN { for (k = 1; k <= 25; k++) print int(s * k / 26) }'
		echo $((size - 1))
	} | sort -n -u | awk -v s="$size" '$1 < s' >"$tmp/cuts"
	while read -r cut; do
		head -c "$cut" "$t" >"$tmp/cut"
		expect_bad "$tmp/cut" "$(basename "$t") cut at $cut of $size"
	done <"$tmp/cuts"
done

# ---- pseudo-random bytes ----
for seed in 1 2 3 4 5 6 7 8; do
	det_bytes "$seed" $((seed * seed * 300)) >"$tmp/rand"
	expect_bad "$tmp/rand" "random bytes, seed $seed"
done

# The valid header (everything before the first record) followed by
# pseudo-random records.
hdr=$(sed -n 2p "$tmp/offsets")
hdr=${hdr:?no records in the trace}
head -c "$hdr" "$tmp/sparc.trace" >"$tmp/header"
for seed in 11 12 13 14 15 16 17 18 19 20; do
	{ cat "$tmp/header"; det_bytes "$seed" $((seed * 97)); } >"$tmp/hrand"
	expect_bad "$tmp/hrand" "header + random bytes, seed $seed"
done
# A valid trace with bytes flipped in its middle.
size=$(file_size "$tmp/x86.trace")
for k in 1 2 3 4 5 6 7 8 9; do
	at=$((size * k / 10))
	{
		head -c "$at" "$tmp/x86.trace"
		det_bytes $((k + 100)) 16
		tail -c $((size - at - 16)) "$tmp/x86.trace"
	} >"$tmp/flip"
	[ "$(file_size "$tmp/flip")" -eq "$size" ] || fail "flip: bad size"
	run_cmd "$LIMIT" "$ANTFARM" replay "$tmp/flip"
	# Corruption may go unnoticed (it can decode as other valid records);
	# what matters is no crash, no hang, and one line when it fails.
	if [ "$rc" -ne 0 ]; then
		[ "$rc" -eq 1 ] || fail "replay flip at $at: exit $rc"
		check_one_error_line "replay flip at $at"
	fi
done

# ---- absurd lengths (docs/trace-format.md: a memory record is tag 0x02,
# varint gpa, varint length, data; tags 0x80..0xff are extension records:
# tag, varint length, payload) ----
absurd()
{
	# shellcheck disable=SC2059
	{ cat "$tmp/header"; printf "$1"; } >"$tmp/absurd"
	expect_bad "$tmp/absurd" "$2"
}
absurd '\002\000\377\377\377\377\017' "memory record of 4 GiB"
absurd '\002\000\377\377\377\377\377\377\377\377\377\001' "memory record of 2^64-1 bytes"
absurd '\002\000\200\200\004\001\002\003' "memory record of 64 KiB, 3 bytes there"
absurd '\002\000\201\200\004' "memory record one byte over the limit"
absurd '\002\377\377\377\377\377\377\377\377\377\377\377\001\010' "varint over 64 bits"
absurd '\002\377\377\377\377\377\377\377\377\377\001\010' "memory record past the top of memory"
absurd '\200\377\377\377\377\017' "extension record of 4 GiB"
absurd '\377\377\377\377\377\377\377\377\377\377\001' "extension record of 2^64-1 bytes"
absurd '\201\200\200\200\200\200\200\200\200\200\200\200\001' "extension length varint too long"

echo "$n_checked bad files rejected by replay, eval and dump"
exit 0
