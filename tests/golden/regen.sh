#!/bin/sh
# tests/golden/regen.sh - regenerates the golden files from tests/golden/cases
# with a built antfarm:
#     make && sh tests/golden/regen.sh            (uses build/antfarm)
#     BUILD=build-x sh tests/golden/regen.sh      (another build directory)
#     sh tests/golden/regen.sh NAME...            (only these cases)
# For each case NAME it writes NAME.trace with `antfarm synth`, keeps it as
# NAME.trace.gz (gzip -9n: no name or time stamp, so the same trace always
# gives the same bytes), and writes NAME.replay.jsonl (antfarm replay
# --format jsonl) and NAME.eval.json (antfarm eval --format json) from it.
# Run it only once a change in behaviour is known to be intended, then
# review `git diff tests/golden` before committing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
ANTFARM=${ANTFARM:-$BUILD/antfarm}
[ -x "$ANTFARM" ] || { echo "regen.sh: $ANTFARM is not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$here"
grep -v '^#' cases | grep -v '^[[:space:]]*$' >"$tmp/cases"
while read -r name args; do
	if [ $# -gt 0 ]; then
		want=0
		for n in "$@"; do [ "$n" = "$name" ] && want=1; done
		[ "$want" -eq 1 ] || continue
	fi
	# The trace is read under its own name, which eval prints as the label.
	# shellcheck disable=SC2086
	"$ANTFARM" synth $args -o "$tmp/$name.trace" </dev/null
	gzip -9n <"$tmp/$name.trace" >"$name.trace.gz"
	"$ANTFARM" replay --format jsonl "$tmp/$name.trace" >"$name.replay.jsonl"
	"$ANTFARM" eval --format json "$tmp/$name.trace" >"$name.eval.json"
	echo "$name: $(wc -c <"$tmp/$name.trace") byte trace" \
		"($(wc -c <"$name.trace.gz") gzipped), $(wc -l <"$name.replay.jsonl") events"
done <"$tmp/cases"
total=$(cat ./*.trace.gz ./*.jsonl ./*.json | wc -c)
echo "golden files: $total bytes in all (keep under 204800)"
