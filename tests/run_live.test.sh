#!/bin/sh
# tests/run_live.test.sh - `antfarm run` on real guests (Debian 6.1 kernels
# under QEMU 10 TCG with the antfarm plugin), as CI runs it:
#   x86_64 (4-level paging), x86_64 --cpu max,vendor=GenuineIntel (5-level
#   paging with KPTI) and i386 (two-level paging), each with fork, forkexec
#   and vforkexec of N processes; then x86_64 --smp 2 forkexec, and x86_64
#   with a static program of our own passed with --add/--exec.
# Every run must finish cleanly with no false negatives (process creates and
# exits) and exactly as many inferred creates as the guest created address
# spaces (os.as_create). A run that fails keeps its trace in
# $ANTFARM_KEEP_DIR (if set) for antfarm replay/eval/dump.
#
# Skips (77) when ANTFARM_SKIP_GUEST=1 (the sanitizer pass in CI), when the
# plugin is not built (no glib), or when QEMU 10 or a guest cannot be had
# (not root and nothing installed, no route to the Debian mirror).
# Knobs: AF_RUN_N (default 50), AF_RUN_CONFIGS (a subset of "x86_64 kpti
# i386"), AF_RUN_TIMEOUT (seconds per run, default 300).
. "$(dirname "$0")/functions.sh"

[ "${ANTFARM_SKIP_GUEST:-0}" = 1 ] && skip "ANTFARM_SKIP_GUEST=1"
requires_antfarm
[ -f "$BUILD/antfarm-qemu.so" ] || skip "no $BUILD/antfarm-qemu.so (the plugin needs libglib2.0-dev)"
requires_prog cc

N=${AF_RUN_N:-50}
CONFIGS=${AF_RUN_CONFIGS:-x86_64 kpti i386}
TO=${AF_RUN_TIMEOUT:-300}

# ---- can this machine run guests at all? ----
requires_qemu10
for c in $CONFIGS; do
	case $c in i386) a=i386 ;; *) a=x86_64 ;; esac
	"$top/guest/build-guest.sh" --quiet --arch "$a" >/dev/null 2>"$tmp/guest.err" ||
		skip "no $a guest: $(tail -n 1 "$tmp/guest.err")"
done

requires_jget

fails=0
runs=0
# check NAME ARGS...: one antfarm run; asserts the completeness criteria.
check()
{
	name=$1
	shift
	runs=$((runs + 1))
	start=$(date +%s)
	run_cmd "$((TO + 30))" "$ANTFARM" run --summary json --events none \
		--timeout "$TO" --record "$tmp/run.aft" --console "$tmp/console.log" "$@"
	secs=$(($(date +%s) - start))
	why=""
	if [ "$rc" != 0 ]; then
		why="exit status $rc: $(tail -n 1 "$tmp/err")"
	else
		tail -n 1 "$tmp/out" >"$tmp/sum.json"
		fnc=$(jget "$tmp/sum.json" .false_negatives.create)
		fne=$(jget "$tmp/sum.json" .false_negatives.exit)
		inf=$(jget "$tmp/sum.json" .inferred.create)
		asc=$(jget "$tmp/sum.json" .os.as_create)
		pc=$(jget "$tmp/sum.json" .os.process_create)
		end=$(jget "$tmp/sum.json" .window.end_ns)
		[ "$fnc" = 0 ] || why="$why false_negatives.create=$fnc"
		[ "$fne" = 0 ] || why="$why false_negatives.exit=$fne"
		[ "$inf" = "$asc" ] || why="$why inferred.create=$inf but os.as_create=$asc"
		[ "$end" != null ] || why="$why the measurement window never closed"
		[ "${pc:-0}" -ge "${MIN_CREATES:-$N}" ] 2>/dev/null ||
			why="$why only $pc processes created (want >= ${MIN_CREATES:-$N})"
	fi
	if [ -n "$why" ]; then
		fails=$((fails + 1))
		echo "run_live: FAIL $name (${secs}s):$why"
		[ -s "$tmp/sum.json" ] && echo "  summary: $(cat "$tmp/sum.json")"
		tail -n 5 "$tmp/err" | sed 's/^/  stderr: /'
		if [ -n "${ANTFARM_KEEP_DIR:-}" ] && mkdir -p "$ANTFARM_KEEP_DIR"; then
			k="$ANTFARM_KEEP_DIR/$(echo "$name" | tr ' /:,=' '_____')"
			cp "$tmp/run.aft" "$k.aft" 2>/dev/null
			cp "$tmp/console.log" "$k.console" 2>/dev/null
			echo "  kept: $k.aft"
		fi
	else
		echo "run_live: ok $name (${secs}s): creates $inf = address spaces $asc, processes $pc, no false negatives"
	fi
	rm -f "$tmp/sum.json"
}

for c in $CONFIGS; do
	case $c in
	x86_64) set -- ;;
	kpti) set -- --cpu max,vendor=GenuineIntel ;;
	i386) set -- --arch i386 ;;
	*) fail "unknown configuration in AF_RUN_CONFIGS: $c" ;;
	esac
	for w in fork forkexec vforkexec; do
		check "$c $w:$N" "$@" --workload "$w:$N"
	done
done

# Two vCPUs.
check "x86_64 smp=2 forkexec:$N" --smp 2 --workload "forkexec:$N"

# A program of our own: fork+exec, vfork+exec and posix_spawn of busybox
# true, and a plain fork, each K times; it prints one line we look for.
cat >"$tmp/spawner.c" <<'EOF'
/* spawner K: K x (fork+exec, vfork+exec, posix_spawn, fork) of /bin/true */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static int ok = 0, bad = 0;
static void reap(pid_t p)
{
	int st;
	if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && !WEXITSTATUS(st))
		ok++;
	else
		bad++;
}
int main(int argc, char **argv)
{
	int k = argc > 1 ? atoi(argv[1]) : 5;
	char *targv[] = { "true", NULL };
	for (int i = 0; i < k; i++) {
		pid_t p = fork();
		if (p == 0) { execv("/bin/true", targv); _exit(127); }
		reap(p);
		p = vfork();
		if (p == 0) { execv("/bin/true", targv); _exit(127); }
		reap(p);
		if (posix_spawn(&p, "/bin/true", NULL, NULL, targv, environ) == 0)
			reap(p);
		else
			bad++;
		p = fork();
		if (p == 0) { usleep(20000); _exit(0); }
		reap(p);
	}
	printf("spawner: ok %d bad %d\n", ok, bad);
	return bad != 0;
}
EOF
if cc -static -O2 -o "$tmp/spawner" "$tmp/spawner.c" 2>"$tmp/cc.err"; then
	K=10
	MIN_CREATES=$((4 * K)) check "x86_64 --add/--exec spawner $K" \
		--add "$tmp/spawner" --exec "spawner $K"
	if ! grep -q "spawner: ok $((4 * K)) bad 0" "$tmp/console.log"; then
		fails=$((fails + 1))
		echo "run_live: FAIL the added program did not run as expected: $(grep spawner "$tmp/console.log" | head -n 3)"
	fi
else
	echo "run_live: cannot link a static program here: $(head -n 1 "$tmp/cc.err")"
	fails=$((fails + 1))
fi

[ "$fails" = 0 ] || fail "$fails of $runs runs failed"
echo "run_live: all $runs runs ok"
