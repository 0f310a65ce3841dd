#!/bin/sh
# tests/golden.test.sh - regression test against the golden files in
# tests/golden/ (listed in tests/golden/cases). For each case NAME it checks
# that
#   1. `antfarm synth` with the case's arguments still writes the trace kept
#      in NAME.trace.gz, byte for byte (models and trace writer unchanged),
#   2. `antfarm replay --format jsonl` of that trace prints NAME.replay.jsonl
#      (reader and engine infer exactly the same events),
#   3. `antfarm eval --format json` of it prints NAME.eval.json.
# When a change in behaviour is intended, regenerate the files with
# tests/golden/regen.sh (see its header) and review the diff.
. "$(dirname "$0")/functions.sh"
requires_antfarm
requires_prog gzip

g=$top/tests/golden
[ -f "$g/cases" ] || fail "no $g/cases"
n=0
grep -v '^#' "$g/cases" | grep -v '^[[:space:]]*$' >"$tmp/cases"
mkdir "$tmp/new" "$tmp/old"
while read -r name args; do
	[ -f "$g/$name.trace.gz" ] ||
		fail "$name: no $g/$name.trace.gz (run tests/golden/regen.sh)"
	gzip -dc <"$g/$name.trace.gz" >"$tmp/old/$name.trace" ||
		fail "$name: cannot gunzip $name.trace.gz"
	# shellcheck disable=SC2086
	expect_rc 0 "$ANTFARM" synth $args -o "$tmp/new/$name.trace" </dev/null
	cmp "$tmp/new/$name.trace" "$tmp/old/$name.trace" >&2 ||
		fail "$name: 'antfarm synth $args' no longer writes the golden trace"

	expect_rc 0 "$ANTFARM" replay --format jsonl "$tmp/old/$name.trace" </dev/null
	if ! cmp -s "$tmp/out" "$g/$name.replay.jsonl"; then
		diff -u "$g/$name.replay.jsonl" "$tmp/out" | head -n 40 >&2
		fail "$name: replay output differs from $name.replay.jsonl"
	fi

	expect_rc 0 "$ANTFARM" eval --format json "$tmp/old/$name.trace" </dev/null
	if ! cmp -s "$tmp/out" "$g/$name.eval.json"; then
		diff -u "$g/$name.eval.json" "$tmp/out" >&2
		fail "$name: eval output differs from $name.eval.json"
	fi
	n=$((n + 1))
done <"$tmp/cases"
[ "$n" -gt 0 ] || fail "no golden cases"
total=$(cat "$g"/*.trace.gz "$g"/*.jsonl "$g"/*.json | wc -c)
[ "$total" -le 204800 ] || fail "golden files take $total bytes, over 200 KiB"
echo "$n golden cases match"
exit 0
