#!/bin/sh
# tests/guest_kinds.test.sh - the guest module's copy of the ground-truth
# event numbers (guest/module/antfarm_truth_kinds.h) must equal enum
# af_truth_kind (include/antfarm/trace.h): checked at compile time, and the
# module must use the channel's magic from include/antfarm/channel.h.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
t=$(mktemp -d) || exit 1
trap 'rm -rf "$t"' EXIT
cat >"$t/k.c" <<'EOC'
#include <antfarm/trace.h>
#include "antfarm_truth_kinds.h"
#define SAME(a, b) _Static_assert((a) == (b), #a " != " #b)
SAME(AFT_FORK, AF_TRUTH_FORK);
SAME(AFT_EXEC, AF_TRUTH_EXEC);
SAME(AFT_EXIT, AF_TRUTH_EXIT);
SAME(AFT_AS_CREATE, AF_TRUTH_AS_CREATE);
SAME(AFT_AS_DESTROY, AF_TRUTH_AS_DESTROY);
SAME(AFT_SWITCH, AF_TRUTH_SWITCH);
SAME(AFT_BEGIN, AF_TRUTH_BEGIN);
SAME(AFT_END, AF_TRUTH_END);
SAME(AFT_VFORK, AF_TRUTH_VFORK);
/* AFT_NKINDS bounds the module's per-kind arrays: one past the largest. */
SAME(AFT_NKINDS, AF_TRUTH_VFORK + 1);
int main(void) { return 0; }
EOC
if ! "$CC" -std=c11 -I"$ROOT/include" -I"$ROOT/guest/module" -c -o "$t/k.o" "$t/k.c"; then
	echo "guest_kinds: the module's event numbers differ from enum af_truth_kind"
	exit 1
fi
grep -q '#include "antfarm/channel.h"' "$ROOT/guest/module/antfarm_truth.c" || {
	echo "guest_kinds: the module does not take the magic from antfarm/channel.h"
	exit 1
}
grep -q 'AF_CHAN_MAGIC' "$ROOT/guest/module/antfarm_truth.c" || {
	echo "guest_kinds: the module does not use AF_CHAN_MAGIC"
	exit 1
}
echo "guest_kinds: ok"
