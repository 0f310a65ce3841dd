#!/bin/sh
# tests/fuzz/run.sh - builds the libFuzzer harnesses (`make fuzz`) and runs
# each one, tests/fuzz/fuzz_NAME.c, for FUZZ_SECONDS seconds (default 30) on
# a scratch copy of its seed corpus tests/fuzz/corpus/NAME/ (the tree's seeds
# are never modified). Exits non-zero if a harness crashes, hangs, leaks or
# runs out of memory; the input that did it is kept in $BUILD/fuzz/artifacts/.
# Exits 77 if clang's libFuzzer is not available (Debian: clang and
# libclang-rt-14-dev).
#
#   tests/fuzz/run.sh [NAME...]      (from anywhere; BUILD=dir as for make)
#   FUZZ_SECONDS=300 tests/fuzz/run.sh trace
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
SECONDS_EACH=${FUZZ_SECONDS:-30}
FUZZ_CC=${FUZZ_CC:-clang}
cd "$top" || exit 2

case $SECONDS_EACH in
''|*[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a number of seconds" >&2; exit 2 ;;
esac

# Is libFuzzer there at all? (A missing runtime is a skip, not a failure.)
probe=$(mktemp -d) || exit 2
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
	cat "$probe/log" >&2
	echo "run.sh: $FUZZ_CC cannot build libFuzzer targets (install clang and libclang-rt-14-dev)"
	exit 77
fi

make BUILD="$BUILD" FUZZ_CC="$FUZZ_CC" fuzz || exit 1

if [ $# -gt 0 ]; then
	names=$*
else
	names=$(for f in tests/fuzz/fuzz_*.c; do [ -f "$f" ] && basename "$f" .c | sed 's/^fuzz_//'; done)
fi
[ -n "$names" ] || { echo "run.sh: no harnesses"; exit 1; }

mkdir -p "$BUILD/fuzz/artifacts"
failed=""
for name in $names; do
	bin="$BUILD/fuzz/fuzz_$name"
	[ -x "$bin" ] || { echo "run.sh: no harness $bin"; failed="$failed $name"; continue; }
	work="$probe/corpus-$name"
	mkdir -p "$work"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp "tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null
	fi
	echo "== fuzz_$name: $SECONDS_EACH s, $(ls "$work" | wc -l) seeds"
	# Each input must finish in 10 s and 2 GiB; leaks count as failures.
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 \
		-artifact_prefix="$BUILD/fuzz/artifacts/$name-" "$work" \
		>"$probe/$name.log" 2>&1
	rc=$?
	tail -n 15 "$probe/$name.log"
	if [ $rc -ne 0 ]; then
		echo "FAIL: fuzz_$name (exit $rc); inputs in $BUILD/fuzz/artifacts/"
		failed="$failed $name"
	else
		echo "PASS: fuzz_$name"
	fi
done
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
exit 0
