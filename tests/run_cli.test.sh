#!/bin/sh
# tests/run_cli.test.sh - `antfarm run` without a real guest: stand-ins for
# QEMU, scripts/deps.sh and guest/build-guest.sh (through the ANTFARM_*
# overrides) check the command's plumbing in seconds:
#   - a fake QEMU that behaves like QEMU + the plugin (connects to the event
#     socket, writes a trace made by `antfarm synth`, prints the guest's
#     console protocol): live lines are relayed, the summary equals
#     `antfarm eval` of the same trace and is the last line of stdout,
#     --record keeps the trace, the guest RAM file is gone;
#   - --add/--exec reach the guest builder; --workload becomes antfarm.cmd;
#   - failures give one clear line and status 1, with nothing left behind:
#     QEMU failing to start, a hung guest (--timeout), SIGTERM to antfarm
#     (QEMU is stopped), a guest that stops early, a failing guest command,
#     lost ground truth, missing QEMU 10 that cannot be installed, a guest
#     that cannot be built;
#   - bad command lines exit 2.
. "$(dirname "$0")/functions.sh"
requires_antfarm
requires_prog cc

# ---- the stand-ins ----
mkdir -p "$tmp/shm" "$tmp/bin" "$tmp/tmpdir"
export ANTFARM_SHM_DIR="$tmp/shm" TMPDIR="$tmp/tmpdir"
export ANTFARM_QEMU="$tmp/bin/qemu" ANTFARM_DEPS="$tmp/bin/deps"
export ANTFARM_BUILD_GUEST="$tmp/bin/build-guest" ANTFARM_PLUGIN="$tmp/bin/plugin.so"
unset ANTFARM_GUEST_KERNEL ANTFARM_GUEST_INITRD
: >"$ANTFARM_PLUGIN"
FAKE="$tmp/fake"   # the stand-ins' log directory
mkdir -p "$FAKE"
export FAKE ANTFARM

# sockcat PATH: copies stdin to the Unix stream socket PATH.
cat >"$tmp/sockcat.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	char buf[4096];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (argc != 2 || fd < 0 || strlen(argv[1]) >= sizeof(sa.sun_path))
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, argv[1]);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	while ((n = read(0, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			return 1;
	return 0;
}
EOF
cc -o "$tmp/bin/sockcat" "$tmp/sockcat.c" || fail "cannot build the socket helper"

cat >"$tmp/bin/deps" <<'EOF'
#!/bin/sh
echo "$*" >"$FAKE/deps.args"
case ${FAKE_DEPS:-ok} in
ok) exit 0 ;;
noroot) echo "antfarm: missing Debian packages: qemu-system-x86; run scripts/deps.sh run as root" >&2; exit 1 ;;
esac
EOF

cat >"$tmp/bin/build-guest" <<'EOF'
#!/bin/sh
for a; do printf '%s\n' "$a"; done >"$FAKE/guest.args"
if [ "${FAKE_GUEST:-ok}" = fail ]; then
	echo "build-guest: fetching package lists" >&2
	echo "build-guest: error: cannot reach the Debian mirror http://deb.debian.org/debian" >&2
	exit 1
fi
echo "arch=x86_64"
echo "kver=6.1.0-fake"
echo "kernel=$FAKE/vmlinuz"
echo "initrd=$FAKE/initrd"
echo "qemu=qemu-system-x86_64"
echo "append=console=ttyS0 panic=-1 quiet"
EOF

# The fake QEMU: --version, else acts out FAKE_QEMU_MODE.
cat >"$tmp/bin/qemu" <<'EOF'
#!/bin/sh
if [ "$1" = --version ]; then
	echo "QEMU emulator version ${FAKE_QEMU_VERSION:-10.0.2} (fake)"
	exit 0
fi
echo $$ >"$FAKE/qemu.pid"
for a; do printf '%s\n' "$a"; done >"$FAKE/qemu.args"
plugin=$(sed -n '/^-plugin$/{n;p;}' "$FAKE/qemu.args")
opt() { printf '%s\n' "$plugin" | tr ',' '\n' | sed -n "s/^$1=//p" | head -n 1; }
sock=$(opt events | sed 's/^unix://')
trace=$(opt trace)
ram=$(opt ram)
case ${FAKE_QEMU_MODE:-ok} in
fail)
	echo "qemu-system-x86_64: -object memory-backend-file: fake failure" >&2
	exit 1 ;;
hang)
	echo "antfarm: guest 6.1.0-fake x86_64"
	exec sleep 300 ;;
noend)
	: | "$FAKE_SOCKCAT" "$sock"
	echo "Linux version 6.1.0-fake"
	echo "antfarm: begin"
	echo "something went wrong"
	exit 0 ;;
esac
# ok, status3, badtruth: behave like QEMU with the plugin.
[ -e "$ram" ] || echo "no RAM file $ram" >>"$FAKE/problems"
"$ANTFARM" synth --os linux2.6 --workload forkexec -n 6 --interval-ms 5 \
	--lifetime-ms 20 -o "$trace" || exit 1
"$ANTFARM" replay "$trace" --format csv >"$FAKE/replay.csv" || exit 1
counts=$("$ANTFARM" dump "$trace" | awk '$2 == "truth" { n[$7]++ }
	END { for (k in n) printf "%s=%d ", k, n[k] }')
[ "$FAKE_QEMU_MODE" = badtruth ] && counts="fork=999 $counts"
{
	# the plugin's text lines (the first row of the CSV is its header)
	awk -F, 'NR > 1 && $3 != "switch" {
		printf "%s vcpu=%s time_ns=%s icount=%s asid=%s serial=%s\n", $3, $2, $1, $7, $4, $6 }
	NR > 1 && $3 == "switch" {
		printf "switch vcpu=%s time_ns=%s icount=%s asid=%s prev_asid=%s serial=%s\n", $2, $1, $7, $4, ($5 == "" ? "none" : $5), $6 }' "$FAKE/replay.csv"
	echo "summary cr3_writes=1 events_dropped=0"
} | "$FAKE_SOCKCAT" "$sock" || exit 1
sleep 0.3
[ -e "$ram" ] && echo "RAM file still there after the plugin connected" >>"$FAKE/problems"
echo "Linux version 6.1.0-fake"
echo "antfarm: begin"
echo "afwork forkexec: created 6 exited-ok 6"
echo "antfarm: truth $counts"
if [ "$FAKE_QEMU_MODE" = status3 ]; then
	echo "antfarm: end status=3"
else
	echo "antfarm: end status=0"
fi
exit 0
EOF
chmod +x "$tmp/bin/qemu" "$tmp/bin/deps" "$tmp/bin/build-guest"
export FAKE_SOCKCAT="$tmp/bin/sockcat"

# nothing_left: no RAM file, no temporary directory, no fake QEMU alive.
nothing_left()
{
	[ -z "$(ls -A "$tmp/shm")" ] || fail "$1: left in ANTFARM_SHM_DIR: $(ls "$tmp/shm")"
	[ -z "$(ls -A "$tmp/tmpdir")" ] || fail "$1: left in TMPDIR: $(ls "$tmp/tmpdir")"
	if [ -f "$FAKE/qemu.pid" ]; then
		p=$(cat "$FAKE/qemu.pid")
		if kill -0 "$p" 2>/dev/null; then
			kill -9 "$p"
			fail "$1: QEMU (pid $p) is still running"
		fi
		rm -f "$FAKE/qemu.pid"
	fi
	if [ -s "$FAKE/problems" ]; then
		fail "$1: $(cat "$FAKE/problems")"
	fi
}

# last_error: the last line of stderr, which must start "antfarm: run: ".
last_error()
{
	l=$(tail -n 1 "$tmp/err")
	case $l in "antfarm: run: "*) ;; *) fail "last stderr line is not an error: $l" ;; esac
	printf '%s\n' "$l"
}

# ---- a run that works ----
run_cmd 60 "$ANTFARM" run --workload fork:7 --rate 20 --life 0.5 \
	--summary json --record "$tmp/kept.aft"
[ "$rc" = 0 ] || fail "run failed ($rc): $(cat "$tmp/err")"
[ ! -s "$tmp/err" ] || fail "stderr not empty: $(cat "$tmp/err")"
nothing_left "ok run"
[ -s "$tmp/kept.aft" ] || fail "--record did not keep the trace"
# live lines: every create and exit of the trace, no switches (default)
want=$(awk -F, 'NR > 1 && ($3 == "create" || $3 == "exit")' "$FAKE/replay.csv" | wc -l)
got=$(grep -c '^\(create\|exit\) vcpu=' "$tmp/out")
[ "$want" -gt 0 ] && [ "$got" = "$want" ] || fail "relayed $got create/exit lines, want $want"
grep -q '^switch ' "$tmp/out" && fail "switch lines shown without --events switch"
grep -q '^summary ' "$tmp/out" && fail "the plugin's summary line leaked to stdout"
# the summary: the last line, the same as antfarm eval of the trace
tail -n 1 "$tmp/out" >"$tmp/sum.json"
"$ANTFARM" eval "$tmp/kept.aft" --format json >"$tmp/eval.json" || fail "eval failed"
norm() { sed 's/^{"label":"[^"]*",//' "$1"; }
[ "$(norm "$tmp/sum.json")" = "$(norm "$tmp/eval.json")" ] ||
	fail "summary differs from antfarm eval: $(cat "$tmp/sum.json") vs $(cat "$tmp/eval.json")"
grep -q '^{"label":"x86_64 smp=1 fork:7",' "$tmp/sum.json" || fail "label: $(cat "$tmp/sum.json")"
# what QEMU was asked to do
args=$FAKE/qemu.args
grep -qx 'afwork fork -n 7 -r 20 -t 0.5' "$args" && fail "workload must go into antfarm.cmd"
grep -q 'antfarm.cmd="afwork fork -n 7 -r 20 -t 0.5"' "$args" || fail "no antfarm.cmd in: $(cat "$args")"
grep -q '^-no-reboot$' "$args" || fail "QEMU without -no-reboot"
grep -q "^memory-backend-file,id=ram0,size=512M,mem-path=$tmp/shm/antfarm-run\.[0-9]*\.[A-Za-z0-9]*,share=on\$" "$args" ||
	fail "RAM backend: $(grep memory-backend "$args")"
grep -q "^$ANTFARM_PLUGIN,ram=.*,events=unix:.*,format=text,truth=off,trace=$tmp/kept.aft," "$args" ||
	fail "plugin options: $(grep -A1 -- -plugin "$args")"
grep -q "^run$" "$FAKE/deps.args" || fail "deps.sh was not run with 'run'"

# jsonl live lines, every kind, text summary, other options reach QEMU
run_cmd 60 "$ANTFARM" run --format jsonl --events all --summary text --smp 3 \
	--mem 300 --cpu max,vendor=GenuineIntel --workload vforkexec
[ "$rc" = 0 ] || fail "jsonl run failed: $(cat "$tmp/err")"
nothing_left "jsonl run"
grep -q "format=jsonl,truth=on" "$args" || fail "jsonl/truth not passed to the plugin"
grep -q "size=300M" "$args" && grep -qx 3 "$args" && grep -qx 'max,vendor=GenuineIntel' "$args" ||
	fail "--mem/--smp/--cpu not passed on: $(cat "$args")"
grep -q 'antfarm.cmd="afwork vforkexec -n 200 -r 50 -t 0.1"' "$args" || fail "default count/rate/life"
grep -q "guest=x86_64 6.1.0-fake cpu=max,,vendor=GenuineIntel smp=3" "$args" ||
	fail "commas in plugin values must be doubled: $(grep guest= "$args")"
grep -q '^switch vcpu=' "$tmp/out" || fail "--events all did not show switches"
grep -q 'false negatives: create' "$tmp/out" || fail "no text summary"
grep -qx 'run: x86_64 cpu=max,vendor=GenuineIntel smp=3 vforkexec:200' "$tmp/out" ||
	fail "text summary without the configuration line"
grep -q '^vforkexec:200 ' "$tmp/out" || fail "text summary row not labelled with the workload"

# --add and --exec go to the guest builder; --exec replaces antfarm.cmd
echo 'echo hi' >"$tmp/prog.sh"
run_cmd 60 "$ANTFARM" run --add "$tmp/prog.sh" --exec 'prog.sh; echo done' --summary csv \
	--arch i386 --events none
[ "$rc" = 0 ] || fail "--add/--exec run failed: $(cat "$tmp/err")"
printf -- '--arch\ni386\n--add\n%s\n--exec\nprog.sh; echo done\n' "$tmp/prog.sh" >"$tmp/want.args"
cmp -s "$tmp/want.args" "$FAKE/guest.args" || fail "guest builder got: $(cat "$FAKE/guest.args")"
grep -q 'antfarm.cmd' "$args" && fail "--exec must not set antfarm.cmd"
[ "$(grep -c . "$tmp/out")" = 2 ] || fail "--events none --summary csv: $(cat "$tmp/out")"
tail -n 1 "$tmp/out" | grep -q '^i386 smp=1 exec,' || fail "csv row: $(tail -n 1 "$tmp/out")"

# ---- failures ----
FAKE_QEMU_MODE=fail run_cmd 60 "$ANTFARM" run
[ "$rc" = 1 ] || fail "QEMU failing: status $rc"
check_one_error_line "QEMU failing"
grep -q "QEMU failed to start: qemu-system-x86_64: -object memory-backend-file: fake failure" "$tmp/err" ||
	fail "QEMU failing: $(cat "$tmp/err")"
nothing_left "QEMU failing"

FAKE_QEMU_MODE=hang run_cmd 60 "$ANTFARM" run --timeout 2
[ "$rc" = 1 ] || fail "hung guest: status $rc"
last_error | grep -q "did not finish within 2 s; QEMU was stopped" || fail "hung guest: $(cat "$tmp/err")"
grep -q 'antfarm: guest 6.1.0-fake' "$tmp/err" || fail "hung guest: console not shown"
nothing_left "hung guest"

# SIGTERM while QEMU runs: QEMU stopped, everything removed, killed by the signal
FAKE_QEMU_MODE=hang "$ANTFARM" run --timeout 100 >"$tmp/out" 2>"$tmp/err" &
apid=$!
i=0
while [ ! -s "$FAKE/qemu.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$FAKE/qemu.pid" ] || fail "SIGTERM: QEMU never started"
sleep 0.3
kill -TERM "$apid"
rc=0
wait "$apid" 2>/dev/null || rc=$?
[ "$rc" = 143 ] || fail "SIGTERM: status $rc, want 143 ($(cat "$tmp/err"))"
grep -q "interrupted by signal 15" "$tmp/err" || fail "SIGTERM: $(cat "$tmp/err")"
nothing_left "SIGTERM"

FAKE_QEMU_MODE=noend run_cmd 60 "$ANTFARM" run
[ "$rc" = 1 ] || fail "early stop: status $rc"
last_error | grep -q "the guest stopped before its command finished" || fail "early stop: $(cat "$tmp/err")"
grep -q "something went wrong" "$tmp/err" || fail "early stop: console not shown"
[ -s "$tmp/out" ] && fail "early stop: a summary was printed"
nothing_left "early stop"

FAKE_QEMU_MODE=status3 run_cmd 60 "$ANTFARM" run --summary json
[ "$rc" = 1 ] || fail "failing command: status $rc"
last_error | grep -q "the guest command exited with status 3" || fail "failing command: $(cat "$tmp/err")"
tail -n 1 "$tmp/out" | grep -q '^{"label":' || fail "failing command: no summary"
nothing_left "failing command"

FAKE_QEMU_MODE=badtruth run_cmd 60 "$ANTFARM" run --summary json
[ "$rc" = 1 ] || fail "lost truth: status $rc"
grep -q "ground truth incomplete: the guest module sent 999 fork reports, the trace holds" "$tmp/err" ||
	fail "lost truth: $(cat "$tmp/err")"
nothing_left "lost truth"

# Not root, QEMU too old: deps.sh's explanation in one line.
FAKE_DEPS=noroot FAKE_QEMU_VERSION=7.2.0 run_cmd 60 "$ANTFARM" run
[ "$rc" = 1 ] || fail "no QEMU 10: status $rc"
check_one_error_line "no QEMU 10"
grep -q "cannot get QEMU 10 installed: missing Debian packages: qemu-system-x86; run scripts/deps.sh run as root" "$tmp/err" ||
	fail "no QEMU 10: $(cat "$tmp/err")"
# ... but with QEMU 10 present a failing deps.sh is not fatal
FAKE_DEPS=noroot run_cmd 60 "$ANTFARM" run --events none
[ "$rc" = 0 ] || fail "deps failing with QEMU 10 present: $(cat "$tmp/err")"
# --no-install skips deps.sh, and an old QEMU is still refused
rm -f "$FAKE/deps.args"
FAKE_QEMU_VERSION=9.2.0 run_cmd 60 "$ANTFARM" run --no-install
[ "$rc" = 1 ] || fail "old QEMU: status $rc"
check_one_error_line "old QEMU"
grep -q "is QEMU 9.2.0, older than the 10.0" "$tmp/err" || fail "old QEMU: $(cat "$tmp/err")"
[ -f "$FAKE/deps.args" ] && fail "--no-install ran deps.sh"
ANTFARM_QEMU=$tmp/bin/no-such-qemu run_cmd 60 "$ANTFARM" run --no-install
[ "$rc" = 1 ] && grep -q "no-such-qemu is not installed" "$tmp/err" || fail "missing QEMU: $(cat "$tmp/err")"

FAKE_GUEST=fail run_cmd 60 "$ANTFARM" run
[ "$rc" = 1 ] || fail "guest build failing: status $rc"
check_one_error_line "guest build failing"
grep -q "cannot build the guest: cannot reach the Debian mirror" "$tmp/err" ||
	fail "guest build failing: $(cat "$tmp/err")"
nothing_left "guest build failing"

ANTFARM_PLUGIN=$tmp/none.so run_cmd 60 "$ANTFARM" run --record "$tmp/never.aft"
[ "$rc" = 1 ] && grep -q "no plugin at $tmp/none.so" "$tmp/err" || fail "no plugin: $(cat "$tmp/err")"
[ -e "$tmp/never.aft" ] && fail "a failed run left an empty --record file"

# Guest RAM that does not fit in ANTFARM_SHM_DIR is refused before booting.
free_mb=$(df -Pm "$tmp/shm" | awk 'NR == 2 { print $4 }')
if [ "${free_mb:-0}" -lt 1000000 ]; then
	run_cmd 60 "$ANTFARM" run --mem 1048576
	[ "$rc" = 1 ] || fail "huge --mem: status $rc"
	check_one_error_line "huge --mem"
	grep -q "MB free, the guest needs 1048576 MB" "$tmp/err" || fail "huge --mem: $(cat "$tmp/err")"
	nothing_left "huge --mem"
fi

# ---- bad command lines ----
for bad in "--arch sparc" "--smp 0" "--smp 65" "--mem 10" "--workload nope" \
	"--workload fork:x" "--workload fork:0" "--workload pagetouch --rate 5" \
	"--format json" "--summary jsonl" "--events bogus" "--timeout 0" \
	"--exec true --workload fork" "--add $tmp/nonexistent" "extra" "--bogus" \
	"--rate 0" "--life -1" "--plugin-opt nokey"; do
	# shellcheck disable=SC2086
	expect_error 2 "$ANTFARM" run $bad
done
expect_rc 0 "$ANTFARM" help run
grep -q -- '--workload' "$tmp/out" || fail "help run says nothing of --workload"
nothing_left "end"
echo "run_cli: ok"
