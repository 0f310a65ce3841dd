#!/bin/sh
# tests/iosched.test.sh - `antfarm iosched`: the simulated Fig. 7 table in
# text, JSON and CSV (the JSON object on the last line of stdout, holding
# aggregate_mb_s for one cell or a cells array), agreement between the
# formats and between a table cell and the same cell run alone, determinism,
# the paper's pattern at the command line, and command-line errors (one line
# on stderr, exit 2), the live mode's included (refused before anything is
# started; the live runs are tests/iosched_live.test.sh). Skips only while
# the command is not built; JSON is read with jq, or python3 if jq is
# missing.
. "$(dirname "$0")/functions.sh"
requires_antfarm

if command -v jq >/dev/null 2>&1; then
	# json_last FILE EXPR: evaluates a jq expression on the JSON object
	# on the last line of FILE.
	json_last()
	{
		tail -n 1 "$1" | jq -e -r "$2" ||
			fail "jq '$2' on the last line of $1: $(tail -c 300 "$1")"
	}
elif command -v python3 >/dev/null 2>&1; then
	json_last()
	{
		python3 - "$1" "$2" <<'EOF' || fail "'$2' on the last line of $1: $(tail -c 300 "$1")"
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
v = json.loads(lines[-1])
expr = sys.argv[2]
# The few jq forms used below: .a, .a.b, .cells | length, .cells[N].key
m = re.fullmatch(r"\.cells \| length", expr)
if m:
    print(len(v["cells"])); sys.exit(0)
m = re.fullmatch(r"\.cells\[(\d+)\]\.(\w+)", expr)
if m:
    print(v["cells"][int(m.group(1))][m.group(2)]); sys.exit(0)
for k in expr.lstrip(".").split("."):
    v = v[k]
if v is None:
    sys.exit(1)
print(v)
EOF
	}
else
	skip "neither jq nor python3 is installed"
fi

# ge A B: A >= B for decimals.
ge()
{
	awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'
}

# ---- registration and help ----
expect_rc 0 "$ANTFARM" --help
grep -q '^  iosched ' "$tmp/out" || fail "--help does not list iosched"
expect_rc 0 "$ANTFARM" help iosched
grep -q '^usage: antfarm iosched' "$tmp/out" || fail "help iosched: no usage line"
expect_rc 0 "$ANTFARM" iosched --help
grep -q '^usage: antfarm iosched' "$tmp/out" || fail "iosched --help: no usage line"

# ---- the live mode's command-line errors (refused before anything starts;
# the live runs themselves are tests/iosched_live.test.sh) ----
for args in "--seed 3" "--assoc-error 0.1" "--vms 9" "--request-kb 44" \
	"--timeout 0" "--mem 64" \
	"--vms 8 --procs 16 --stride-mb 2000"; do
	# shellcheck disable=SC2086
	expect_error 2 "$ANTFARM" iosched $args
done
for args in "--timeout 10" "--mem 512" "--no-assoc" "--verbose" "--server nbdkit" \
	"--reader buffered" "--bfq-low-latency"; do
	# shellcheck disable=SC2086
	expect_error 2 "$ANTFARM" iosched --simulate $args
done

# Lists: distinct known names, no empty items.
for l in ",deadline" "deadline," "deadline,,as-vm" "deadline,deadline" "bogus"; do
	expect_error 2 "$ANTFARM" iosched --simulate --sched "$l"
done
expect_error 2 "$ANTFARM" iosched --simulate --guest-elevator "bfq,bfq"
expect_error 2 "$ANTFARM" iosched --server qemu-nbd
expect_error 2 "$ANTFARM" iosched --reader cached
expect_error 2 "$ANTFARM" iosched --bfq-low-latency --guest-elevator none,mq-deadline
# The host steps it shares with `antfarm run` speak as iosched.
# (The plugin and a guest kernel from the environment would be found
# first: pin them.)
expect_error 1 env -u ANTFARM_GUEST_KERNEL -u ANTFARM_GUEST_INITRD \
	ANTFARM_PLUGIN="$ANTFARM" ANTFARM_BUILD_GUEST="$tmp/none" ANTFARM_DEPS=none \
	"$ANTFARM" iosched --quick
[ "$(cat "$tmp/err")" = "antfarm: iosched: $tmp/none: No such file or directory (set ANTFARM_BUILD_GUEST)" ] ||
	fail "a missing guest builder: $(cat "$tmp/err")"
expect_error 2 "$ANTFARM" iosched --simulate --reader ""

# ---- the table (text) ----
expect_rc 0 "$ANTFARM" iosched --simulate
[ -s "$tmp/err" ] && fail "stderr not empty: $(cat "$tmp/err")"
cp "$tmp/out" "$tmp/table.txt"
for s in noop deadline as-single as-vm as-process; do
	grep -q " $s" "$tmp/table.txt" || fail "table lacks column $s"
done
for c in '1 VM x 2 procs' '2 VMs x 1 proc ' '2 VMs x 2 procs'; do
	grep -q "^$c" "$tmp/table.txt" || fail "table lacks row '$c'"
done
grep -q '^lone sequential reader' "$tmp/table.txt" || fail "table lacks the lone reader"
# Same command, same output.
expect_rc 0 "$ANTFARM" iosched --simulate
cmp -s "$tmp/out" "$tmp/table.txt" || fail "two runs differ"

# ---- the table (JSON): the last line is one object with 15 cells ----
expect_rc 0 "$ANTFARM" iosched --simulate --format json
cp "$tmp/out" "$tmp/table.json"
[ "$(json_last "$tmp/table.json" '.cells | length')" = 15 ] ||
	fail "cells: $(tail -c 300 "$tmp/table.json")"
lone=$(json_last "$tmp/table.json" .lone_reader_mb_s)
ge "$lone" 55 || fail "lone reader $lone MB/s"
# Cells run config-major in scheduler order; check the paper's pattern.
i=0
for cfg in 1x2 2x1 2x2; do
	dl=$(json_last "$tmp/table.json" ".cells[$((i + 1))].aggregate_mb_s")
	single=$(json_last "$tmp/table.json" ".cells[$((i + 2))].aggregate_mb_s")
	vmas=$(json_last "$tmp/table.json" ".cells[$((i + 4))].aggregate_mb_s")
	[ "$(json_last "$tmp/table.json" ".cells[$((i + 4))].sched")" = as-process ] ||
		fail "cell order"
	ge "$vmas" "$(awk -v d="$dl" 'BEGIN { print 2.5 * d }')" ||
		fail "$cfg: as-process $vmas < 2.5 x deadline $dl"
	ge "$vmas" "$(awk -v l="$lone" 'BEGIN { print 0.9 * l }')" ||
		fail "$cfg: as-process $vmas < 90 % of lone $lone"
	ge "$(awk -v d="$dl" 'BEGIN { print 1.1 * d }')" "$single" ||
		fail "$cfg: as-single $single > 1.1 x deadline $dl"
	i=$((i + 5))
done

# ---- one cell (JSON) equals the table's cell ----
expect_rc 0 "$ANTFARM" iosched --simulate --vms 2 --procs 2 --sched as-process --format json
one=$(json_last "$tmp/out" .aggregate_mb_s)
[ "$one" = "$(json_last "$tmp/table.json" '.cells[14].aggregate_mb_s')" ] ||
	fail "single cell $one differs from the table's"
[ "$(json_last "$tmp/out" .sched)" = as-process ] || fail "sched field"
[ "$(json_last "$tmp/out" .vms)" = 2 ] || fail "vms field"
json_last "$tmp/out" .per_process >/dev/null
# Text before JSON is allowed; the contract is the last line.
[ "$(tail -n 1 "$tmp/out" | cut -c1)" = "{" ] || fail "last line is not an object"

# ---- CSV: a header and a row per cell, agreeing with JSON ----
expect_rc 0 "$ANTFARM" iosched --simulate --format csv
[ "$(wc -l <"$tmp/out")" -eq 16 ] || fail "csv: $(wc -l <"$tmp/out") lines"
head -n 1 "$tmp/out" | grep -q '^vms,procs,sched,guest_elevator,' || fail "csv header"
ncol=$(head -n 1 "$tmp/out" | awk -F, '{ print NF }')
awk -F, -v n="$ncol" 'NF != n { exit 1 }' "$tmp/out" || fail "csv: ragged rows"
csv=$(awk -F, '$1 == 2 && $2 == 2 && $3 == "as-process" { print $7 }' "$tmp/out")
awk -v a="$csv" -v b="$one" 'BEGIN { exit !(a + 0 == b + 0) }' ||
	fail "csv $csv != json $one"

# ---- one cell (text), options ----
expect_rc 0 "$ANTFARM" iosched --simulate --vms 1 --procs 2 --sched deadline --quick
grep -q '^  aggregate ' "$tmp/out" || fail "single text: $(cat "$tmp/out")"
expect_rc 0 "$ANTFARM" iosched --simulate --vms 1 --procs 2 --sched as-process \
	--assoc-error 0.3 --seed 7 --format json
[ "$(json_last "$tmp/out" .mistagged)" -gt 0 ] || fail "no mistagged requests"
expect_rc 0 "$ANTFARM" iosched --simulate --quick --guest-elevator all --format json
[ "$(json_last "$tmp/out" '.cells | length')" = 45 ] || fail "all guest elevators"
expect_rc 0 "$ANTFARM" iosched --simulate --vms 1 --procs 2 --sched deadline \
	--guest-elevator bfq --format json
bfq=$(json_last "$tmp/out" .aggregate_mb_s)
ge "$bfq" 40 || fail "guest bfq in 1 VM x 2 procs: $bfq MB/s"
expect_rc 0 "$ANTFARM" iosched --simulate --vms 1 --procs 1 --sched deadline \
	--no-readahead --format json
ge 20 "$(json_last "$tmp/out" .aggregate_mb_s)" || fail "no read-ahead is not slower"
expect_rc 0 "$ANTFARM" iosched --simulate --vms 3 --procs 1 --sched as-vm \
	--request-kb 64 --stride-mb 512 --mb 100 --format csv
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "one-cell csv"

# ---- command-line errors: one line, exit 2 ----
for args in \
	"--vms 0" "--vms 17" "--vms x" "--procs 0" "--procs 1.5" \
	"--sched cfq" "--guest-elevator cfq" "--format xml" "--format jsonl" \
	"--mb 0" "--mb 2000" "--assoc-error 2" "--assoc-error abc" \
	"--assoc-error -0.1" "--request-kb 0" "--stride-mb 0" "--seed -1" \
	"--bogus" "--vms" "extra" "--stride-mb 10 --mb 200" \
	"--vms 16 --procs 16"; do
	# shellcheck disable=SC2086
	expect_error 2 "$ANTFARM" iosched --simulate $args
done
exit 0
