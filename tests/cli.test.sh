#!/bin/sh
# tests/cli.test.sh - the antfarm command: help and version, each
# subcommand's output formats (replay text/jsonl/csv, eval text/json/csv,
# dump, synth), their agreement with each other, and command-line and input
# errors (one line on stderr, exit 1 for bad input, 2 for bad usage).
# Skips only while the command is not built. JSON is checked with jq, or
# python3 if jq is missing.
. "$(dirname "$0")/functions.sh"
requires_antfarm

if command -v jq >/dev/null 2>&1; then
	# json_get FILE PATH: prints the value at a jq path (e.g. .os.switch)
	# of the single JSON object in FILE; fails if it is missing or null.
	json_get()
	{
		jq -e -r "$2 | select(. != null)" "$1" ||
			fail "no $2 in $1: $(head -c 300 "$1")"
	}
	# jsonl_check FILE: every line is a JSON object.
	jsonl_check()
	{
		jq -e -s 'all(.[]; type == "object")' "$1" >/dev/null ||
			fail "$1: not JSON lines"
	}
elif command -v python3 >/dev/null 2>&1; then
	json_get()
	{
		python3 - "$1" "$2" <<'EOF' || fail "no $2 in $1: $(head -c 300 "$1")"
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].lstrip(".").split("."):
    v = v[k]
if v is None:
    sys.exit(1)
print(v)
EOF
	}
	jsonl_check()
	{
		python3 -c 'import json,sys
for l in open(sys.argv[1]):
    assert isinstance(json.loads(l), dict)' "$1" || fail "$1: not JSON lines"
	}
else
	skip "neither jq nor python3 is installed"
fi

# ---- help and version ----
expect_rc 0 "$ANTFARM" --help
for c in replay eval dump synth; do
	grep -q "^  $c " "$tmp/out" || fail "--help does not list $c"
done
expect_rc 0 "$ANTFARM" -h
expect_rc 0 "$ANTFARM" --version
grep -Eq '^antfarm [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out" || fail "--version: $(cat "$tmp/out")"
for c in replay eval dump synth; do
	expect_rc 0 "$ANTFARM" help "$c"
	grep -q "^usage: antfarm $c" "$tmp/out" || fail "help $c: no usage line"
	cp "$tmp/out" "$tmp/help1"
	expect_rc 0 "$ANTFARM" "$c" --help
	cmp -s "$tmp/out" "$tmp/help1" || fail "'$c --help' differs from 'help $c'"
done
expect_rc 0 "$ANTFARM" help
expect_error 2 "$ANTFARM"
expect_error 2 "$ANTFARM" nosuchcommand
expect_error 2 "$ANTFARM" --nosuchoption
expect_error 2 "$ANTFARM" help nosuchcommand
expect_error 2 "$ANTFARM" help replay eval

# ---- synth ----
t26="$tmp/l26.trace"
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload forkexec -n 6 --seed 3 -o "$t26"
[ -s "$t26" ] || fail "synth wrote nothing"
[ ! -s "$tmp/out" ] || fail "synth -o FILE printed to stdout"
# Deterministic: the same options give the same bytes, also on stdout.
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload forkexec -n 6 --seed 3 -o -
cmp -s "$tmp/out" "$t26" || fail "synth is not deterministic (or -o - differs)"
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload forkexec -n 6 --seed 4 -o "$tmp/seed4.trace"
cmp -s "$tmp/seed4.trace" "$t26" && fail "--seed makes no difference"
tsp="$tmp/sparc.trace"
expect_rc 0 "$ANTFARM" synth --os sparc-linux --workload fork -n 4 -o "$tsp"
expect_rc 0 "$ANTFARM" synth --os windows --workload forkexec -n 3 --vcpus 2 \
	--lifetime-ms 300 --interval-ms 20 -o "$tmp/win.trace"
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 --paging 5 \
	--kpti --pcid --lazy-tlb --phys-mb 256 -o "$tmp/opts.trace"

expect_error 2 "$ANTFARM" synth --workload fork -n 3 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 -n 3 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3
expect_error 2 "$ANTFARM" synth --os beos --workload fork -n 3 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload idle -n 3 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 0 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3x -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 99999999999999999999999 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 --vcpus 65 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 --paging 3 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 --bogus -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 -o
expect_error 2 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 -o "$tmp/x.trace" extra
# Impossible combinations (synth.h): Windows has no fork; SPARC has no KPTI.
expect_error 2 "$ANTFARM" synth --os windows --workload fork -n 3 -o "$tmp/x.trace"
expect_error 2 "$ANTFARM" synth --os sparc-linux --workload fork -n 3 --kpti -o "$tmp/x.trace"
[ ! -e "$tmp/x.trace" ] || fail "a refused synth left $tmp/x.trace behind"
expect_error 1 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 -o "$tmp/no/such/dir/x.trace"
mkdir "$tmp/adir"
expect_error 1 "$ANTFARM" synth --os linux2.6 --workload fork -n 3 -o "$tmp/adir"

# ---- replay ----
expect_rc 0 "$ANTFARM" replay --format jsonl "$t26"
cp "$tmp/out" "$tmp/r.jsonl"
[ -s "$tmp/r.jsonl" ] || fail "replay jsonl printed nothing"
jsonl_check "$tmp/r.jsonl"
n_ev=$(wc -l <"$tmp/r.jsonl")
for k in time_ns vcpu event asid serial; do
	[ "$(grep -c "\"$k\":" "$tmp/r.jsonl")" -eq "$n_ev" ] ||
		fail "replay jsonl: not every line has \"$k\""
done
grep -Eqv '"event":"(create|exit|switch)"' "$tmp/r.jsonl" &&
	fail "replay jsonl: unknown event kind"
grep '"event":"switch"' "$tmp/r.jsonl" | grep -qv '"prev_asid":' &&
	fail "replay jsonl: a switch without prev_asid"
grep -Eqv '"asid":"0x[0-9a-f]+"' "$tmp/r.jsonl" &&
	fail "replay jsonl: asid is not a hex string"
n_create=$(grep -c '"event":"create"' "$tmp/r.jsonl")
n_exit=$(grep -c '"event":"exit"' "$tmp/r.jsonl")
n_switch=$(grep -c '"event":"switch"' "$tmp/r.jsonl")
[ "$n_create" -gt 0 ] || fail "replay: nothing created"
grep -q summary "$tmp/r.jsonl" && fail "replay jsonl has a summary line"

expect_rc 0 "$ANTFARM" replay --format=csv "$t26"
head -n 1 "$tmp/out" | grep -q '^time_ns,vcpu,event,asid,' || fail "replay csv: no header"
[ $(($(wc -l <"$tmp/out") - 1)) -eq "$n_ev" ] || fail "replay csv: row count differs from jsonl"
awk -F, 'NR > 1 && NF != 7 { exit 1 }' "$tmp/out" || fail "replay csv: ragged rows"

expect_rc 0 "$ANTFARM" replay "$t26"
cp "$tmp/out" "$tmp/r.txt"
[ $(($(wc -l <"$tmp/r.txt") - 1)) -eq "$n_ev" ] || fail "replay text: line count differs from jsonl"
tail -n 1 "$tmp/r.txt" | grep -q "^summary: observations [0-9]*, creates $n_create, exits $n_exit, switches $n_switch," ||
	fail "replay text: summary disagrees with the events: $(tail -n 1 "$tmp/r.txt")"
expect_rc 0 "$ANTFARM" replay -f text - <"$t26"
cmp -s "$tmp/out" "$tmp/r.txt" || fail "replay from stdin differs"

# Serials count creates: 1..n_create, each once.
[ "$(grep '"event":"create"' "$tmp/r.jsonl" | sed 's/.*"serial":\([0-9]*\).*/\1/' | sort -n | uniq | wc -l)" -eq "$n_create" ] ||
	fail "replay: create serials are not distinct"

expect_error 2 "$ANTFARM" replay
expect_error 2 "$ANTFARM" replay --format xml "$t26"
expect_error 2 "$ANTFARM" replay --format json "$t26"
expect_error 2 "$ANTFARM" replay --format
expect_error 2 "$ANTFARM" replay -q "$t26"
expect_error 2 "$ANTFARM" replay "$t26" "$t26"
expect_error 1 "$ANTFARM" replay "$tmp/does-not-exist"
expect_error 1 "$ANTFARM" replay "$tmp"
if [ -w /dev/full ]; then
	run_cmd 60 sh -c '"$1" replay --format jsonl "$2" >/dev/full' sh "$ANTFARM" "$t26"
	[ "$rc" -eq 1 ] || fail "replay to /dev/full: exit $rc"
	check_one_error_line "replay to /dev/full"
fi

# ---- eval ----
expect_rc 0 "$ANTFARM" eval --format json "$t26"
cp "$tmp/out" "$tmp/e.json"
[ "$(wc -l <"$tmp/e.json")" -eq 1 ] || fail "eval json is not one line"
for p in os.process_create os.process_exit os.as_create os.as_exit os.switch \
	inferred.create inferred.exit inferred.switch \
	false_negatives.create false_negatives.exit \
	false_positives.create false_positives.exit \
	as_false_negatives.create as_false_negatives.exit \
	as_false_positives.create as_false_positives.exit \
	lag.create.n lag.exit.n window.begin_ns; do
	v=$(json_get "$tmp/e.json" ".$p")
	case $v in
	'' | *[!0-9]*) fail "eval json: .$p is '$v', not a count" ;;
	esac
done
for k in mean_us median_us p95_us max_us min_us; do
	json_get "$tmp/e.json" ".lag.create.$k" >/dev/null
	json_get "$tmp/e.json" ".lag.exit.$k" >/dev/null
done
# The workload's processes all lie inside the window, and each is seen.
[ "$(json_get "$tmp/e.json" .os.process_create)" -eq 6 ] || fail "eval: os.process_create != 6"
[ "$(json_get "$tmp/e.json" .os.process_exit)" -eq 6 ] || fail "eval: os.process_exit != 6"
[ "$(json_get "$tmp/e.json" .false_negatives.create)" -eq 0 ] || fail "eval: create false negatives"
[ "$(json_get "$tmp/e.json" .false_negatives.exit)" -eq 0 ] || fail "eval: exit false negatives"
[ "$(json_get "$tmp/e.json" .lag.create.n)" -eq 6 ] || fail "eval: lag.create.n != 6"
# Inferred counts are within the window, so at most what replay printed.
[ "$(json_get "$tmp/e.json" .inferred.create)" -le "$n_create" ] || fail "eval: more creates than replay"
[ "$(json_get "$tmp/e.json" .inferred.switch)" -le "$n_switch" ] || fail "eval: more switches than replay"

# --strict-pcid: with PCIDs, the strict rule waits for a PCID flush that
# Linux-like kernels delay, so it can only lose exits, never gain them.
tpc=$tmp/pcid.trace
expect_rc 0 "$ANTFARM" synth --os linux2.6 --workload forkexec -n 40 --pcid --kpti -o "$tpc"
expect_rc 0 "$ANTFARM" eval --format json "$tpc"
cp "$tmp/out" "$tmp/pd.json"
expect_rc 0 "$ANTFARM" eval --format json --strict-pcid "$tpc"
cp "$tmp/out" "$tmp/ps.json"
[ "$(json_get "$tmp/pd.json" .false_negatives.exit)" -eq 0 ] || fail "eval: PCID exit false negatives by default"
[ "$(json_get "$tmp/ps.json" .inferred.exit)" -lt "$(json_get "$tmp/pd.json" .inferred.exit)" ] ||
	fail "eval --strict-pcid infers as many exits as the default rule"
expect_rc 0 "$ANTFARM" replay --strict-pcid "$tpc"
grep -q '^summary: ' "$tmp/out" || fail "replay --strict-pcid: no summary"
expect_error 2 "$ANTFARM" eval --strict-pcid=1 "$tpc"

expect_rc 0 "$ANTFARM" eval "$t26"
grep -q 'Process.*Addr Spc.*Inferred.*Process.*Addr Spc.*Inferred.*Context.*CS' "$tmp/out" ||
	fail "eval text: no Table 2 heading"
grep -q 'Create.*Create.*Create.*Exit.*Exit.*Exit.*Switch.*Inferred' "$tmp/out" ||
	fail "eval text: no Table 2 heading (line 2)"
grep -Eq "^l26\.trace +6 +[0-9]+ +[0-9]+ +6 " "$tmp/out" || fail "eval text: no row for the trace"
grep -q '^false negatives: create 0, exit 0' "$tmp/out" || fail "eval text: FN line"
grep -q '^false positives: ' "$tmp/out" || fail "eval text: FP line"
grep -q '^create lag: n 6, mean ' "$tmp/out" || fail "eval text: create lag line"
grep -q '^exit lag: n 6, mean ' "$tmp/out" || fail "eval text: exit lag line"
grep -q '^window: ' "$tmp/out" || fail "eval text: window line"

expect_rc 0 "$ANTFARM" eval --format csv "$t26"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "eval csv: not header + one row"
hf=$(head -n 1 "$tmp/out" | awk -F, '{ print NF }')
rf=$(tail -n 1 "$tmp/out" | awk -F, '{ print NF }')
[ "$hf" -eq "$rf" ] || fail "eval csv: $hf columns in the header, $rf in the row"
col=$(head -n 1 "$tmp/out" | tr , '\n' | grep -n '^os_process_create$' | cut -d: -f1)
[ -n "$col" ] && [ "$(tail -n 1 "$tmp/out" | cut -d, -f"$col")" -eq 6 ] ||
	fail "eval csv: os_process_create column"

expect_rc 0 "$ANTFARM" eval --format json "$tsp"
[ "$(json_get "$tmp/out" .os.process_create)" -eq 4 ] || fail "eval sparc: os.process_create != 4"

expect_error 2 "$ANTFARM" eval
expect_error 2 "$ANTFARM" eval --format jsonl "$t26"
expect_error 2 "$ANTFARM" eval "$t26" extra
expect_error 1 "$ANTFARM" eval "$tmp/does-not-exist"
: >"$tmp/empty"
expect_error 1 "$ANTFARM" eval "$tmp/empty"

# ---- dump ----
expect_rc 0 "$ANTFARM" dump "$t26"
cp "$tmp/out" "$tmp/d.txt"
head -n 1 "$tmp/d.txt" | grep -q '^@0 header version [0-9]* mmu x86 ' || fail "dump: header line"
grep -q ' truth t [0-9]* vcpu [0-9]* fork pid ' "$tmp/d.txt" || fail "dump: no fork"
grep -q ' obs t [0-9]* vcpu [0-9]* root_load value 0x' "$tmp/d.txt" || fail "dump: no root load"
grep -vq '^@[0-9][0-9]* ' "$tmp/d.txt" && fail "dump: a line without an offset"
# Offsets strictly increase and stay inside the file.
size=$(file_size "$t26")
sed 's/^@\([0-9]*\) .*/\1/' "$tmp/d.txt" | awk -v size="$size" '
	NR > 1 && $1 <= last { exit 1 } $1 >= size { exit 1 } { last = $1 }' ||
	fail "dump: offsets do not increase inside the file"
n_truth=$(grep -c ' truth ' "$tmp/d.txt")
[ "$n_truth" -gt 12 ] || fail "dump: only $n_truth ground-truth records"
expect_rc 0 "$ANTFARM" dump "$tsp"
head -n 1 "$tmp/out" | grep -q ' mmu context-id ' || fail "dump sparc: mmu"
grep -q ' obs t [0-9]* vcpu [0-9]* ctx_load value 0x' "$tmp/out" || fail "dump sparc: no ctx_load"
expect_error 2 "$ANTFARM" dump
expect_error 2 "$ANTFARM" dump --format json "$t26"
expect_error 1 "$ANTFARM" dump "$tmp/does-not-exist"

exit 0
