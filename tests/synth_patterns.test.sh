#!/bin/sh
# tests/synth_patterns.test.sh - the Antfarm paper's completeness tables
# (Table 2, x86; Table 3, SPARC) re-created through the command line: for
# each row, `antfarm synth` models the kernel running the workload (n=1000)
# and `antfarm eval --format json` scores the replayed inference. Checked
# per row: OS process creates and exits, OS address-space creates and exits,
# inferred creates and exits, no false negatives, inferred switches equal to
# the OS's; then the compile workload (no misses; on x86 the inferred events
# are exactly the address-space events) and a few x86 option variants.
# Skips while the command (or its synth subcommand) is not built.
. "$(dirname "$0")/functions.sh"
requires_antfarm
run_cmd 30 "$ANTFARM" synth --help
[ "$rc" -eq 0 ] || skip "antfarm synth is not available"

if command -v python3 >/dev/null 2>&1; then
	# fields FILE: the counts of one eval JSON object, space-separated
	fields()
	{
		python3 - "$1" <<'EOF' || fail "bad eval output: $(head -c 300 "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
print(d["os"]["process_create"], d["os"]["process_exit"],
      d["os"]["as_create"], d["os"]["as_exit"], d["os"]["switch"],
      d["inferred"]["create"], d["inferred"]["exit"], d["inferred"]["switch"],
      d["false_negatives"]["create"], d["false_negatives"]["exit"],
      d["as_false_positives"]["create"], d["as_false_positives"]["exit"])
EOF
	}
elif command -v jq >/dev/null 2>&1; then
	fields()
	{
		jq -e -r '[.os.process_create, .os.process_exit, .os.as_create,
			.os.as_exit, .os.switch, .inferred.create, .inferred.exit,
			.inferred.switch, .false_negatives.create,
			.false_negatives.exit, .as_false_positives.create,
			.as_false_positives.exit] | map(tostring) | join(" ")' "$1" ||
			fail "bad eval output: $(head -c 300 "$1")"
	}
else
	skip "neither python3 nor jq is installed"
fi

# score ARGS...: synth with ARGS, eval; sets pc pe asc ase sw ic ie isw fnc
# fne asfpc asfpe
score()
{
	run_cmd 300 "$ANTFARM" synth "$@" -o "$tmp/t"
	[ "$rc" -eq 0 ] || fail "synth $*: exit $rc: $(head -c 300 "$tmp/err")"
	run_cmd 300 "$ANTFARM" eval "$tmp/t" --format json
	[ "$rc" -eq 0 ] || fail "eval ($*): exit $rc: $(head -c 300 "$tmp/err")"
	cp "$tmp/out" "$tmp/json"
	# shellcheck disable=SC2046
	set -- $(fields "$tmp/json")
	pc=$1 pe=$2 asc=$3 ase=$4 sw=$5 ic=$6 ie=$7 isw=$8 fnc=$9
	shift 9
	fne=$1 asfpc=$2 asfpe=$3
	rm -f "$tmp/t"
}

# row "ARGS" N AS INFERRED: one line of the paper's tables
row()
{
	args=$1
	# shellcheck disable=SC2086
	score $args
	got="$pc/$pe $asc/$ase $ic/$ie"
	want="$2/$2 $3/$3 $4/$4"
	echo "$args: process $pc/$pe, address space $asc/$ase," \
		"inferred $ic/$ie, switches $sw/$isw, FN $fnc/$fne"
	[ "$got" = "$want" ] ||
		fail "$args: creates/exits $got, wanted $want"
	[ "$fnc" -eq 0 ] && [ "$fne" -eq 0 ] ||
		fail "$args: false negatives $fnc/$fne"
	[ "$sw" -gt "$2" ] && [ "$isw" -eq "$sw" ] ||
		fail "$args: inferred switches $isw, OS switches $sw"
}

n=1000
# Table 2, Linux 2.4: one address space per process, exec reuses it
row "--os linux2.4 --workload fork -n $n" $n $n $n
row "--os linux2.4 --workload forkexec -n $n" $n $n $n
row "--os linux2.4 --workload vforkexec -n $n" $n $n $n
# Table 2, Linux 2.6: exec makes a second address space
row "--os linux2.6 --workload fork -n $n" $n $n $n
row "--os linux2.6 --workload forkexec -n $n" $n $((2 * n)) $((2 * n))
row "--os linux2.6 --workload vforkexec -n $n" $n $n $n
# Table 2, Windows: CreateProcess
row "--os windows --workload forkexec -n $n" $n $n $n
# Table 3, SPARC/Linux: fork's and exec's context demaps
row "--os sparc-linux --workload fork -n $n" $n $n $((2 * n))
row "--os sparc-linux --workload forkexec -n $n" $n $n $((3 * n))
row "--os sparc-linux --workload vforkexec -n $n" $n $n $n

# x86 variants: the counts do not move
row "--os linux2.6 --workload forkexec -n $n --kpti --paging 5" \
	$n $((2 * n)) $((2 * n))
row "--os linux2.6 --workload forkexec -n $n --lazy-tlb --vcpus 4" \
	$n $((2 * n)) $((2 * n))
row "--os linux2.4 --workload forkexec -n $n --paging pae --kpti --vcpus 2" \
	$n $n $n
row "--os linux2.4 --workload vforkexec -n $n --paging 32 --lazy-tlb" \
	$n $n $n

# compile: no misses anywhere; on x86 inference is exact on address spaces
for os in linux2.4 linux2.6 windows sparc-linux; do
	score --os $os --workload compile -n 800
	echo "compile $os: process $pc/$pe, address space $asc/$ase," \
		"inferred $ic/$ie, switches $sw/$isw, FN $fnc/$fne"
	[ "$pc" -eq 800 ] && [ "$pe" -eq 800 ] ||
		fail "compile $os: processes $pc/$pe"
	[ "$fnc" -eq 0 ] && [ "$fne" -eq 0 ] ||
		fail "compile $os: false negatives $fnc/$fne"
	[ "$isw" -eq "$sw" ] ||
		fail "compile $os: inferred switches $isw, OS switches $sw"
	if [ $os = sparc-linux ]; then
		[ "$ic" -gt "$pc" ] || fail "compile $os: no demap re-creates"
	else
		[ "$ic" -eq "$asc" ] && [ "$ie" -eq "$ase" ] &&
			[ "$asfpc" -eq 0 ] && [ "$asfpe" -eq 0 ] ||
			fail "compile $os: inferred $ic/$ie, address spaces $asc/$ase"
	fi
done
exit 0
