#!/bin/sh
# tests/guest_boot.test.sh - builds the x86_64 guest with guest/build-guest.sh
# and boots it under plain qemu-system-x86_64 (TCG, no plugin), twice:
#   1. with a per-run overlay (--add a script, --exec a command), 2 vCPUs;
#   2. with the base initramfs and the command on the kernel command line;
#   3. with a virtio-blk disk, the virtio modules and BFQ loaded at boot;
#   4. with antfarm.timeout= cutting a long command short.
# Checks that the ground-truth module loads and counts sensible events, that
# the workload runs to completion, and that the guest powers off by itself.
# Skips (77) without QEMU or without a reachable Debian mirror.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QEMU=qemu-system-x86_64
command -v "$QEMU" >/dev/null 2>&1 || { echo "skip: $QEMU not installed"; exit 77; }
t=$(mktemp -d) || exit 1
trap 'rm -rf "$t"' EXIT
fail() {
	echo "guest_boot: $*"
	[ -f "$t/console" ] && { echo "--- console:"; cat "$t/console"; }
	exit 1
}

# build ARGS... : runs build-guest.sh, leaves its key=value output in $t/out.
build() {
	if ! "$ROOT/guest/build-guest.sh" --quiet "$@" >"$t/out" 2>"$t/err"; then
		cat "$t/err"
		if grep -q -e 'cannot reach the Debian mirror' -e 'missing build tools' "$t/err"; then
			echo "skip: $(tail -n 1 "$t/err")"
			exit 77
		fi
		fail "build-guest.sh $* failed"
	fi
}
get() { sed -n "s/^$1=//p" "$t/out"; }

# boot EXTRA_APPEND QEMU_ARGS... : boots the built guest; console in $t/console.
boot() {
	extra=$1
	shift
	start=$(date +%s)
	timeout 90 "$(get qemu)" -accel tcg -m 512 -nodefaults -display none \
		-serial stdio -no-reboot -kernel "$(get kernel)" -initrd "$(get initrd)" \
		-append "$(get append) $extra" "$@" </dev/null >"$t/console" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	[ "$rc" = 124 ] && fail "the guest did not power off within 90 s"
	[ "$rc" = 0 ] || fail "QEMU exited with status $rc"
	echo "guest_boot: boot took ${secs}s"
}
# count NAME: the module's final count of NAME from the "antfarm: truth" line.
count() {
	v=$(sed -n "s/.*antfarm: truth .*\\b$1=\\([0-9]*\\).*/\\1/p" "$t/console" | head -n 1)
	[ -n "$v" ] || fail "no $1= in the truth line"
	echo "$v"
}
has() { grep -q -- "$1" "$t/console" || fail "missing from the console: $1"; }

# 1. overlay: an added script and a command
printf '#!/bin/sh\necho "hello from an added file $*"\n' >"$t/hello.sh"
build --arch x86_64 --add "$t/hello.sh" --exec 'hello.sh one; afwork forkexec -n 20 -r 50 -t 0.05'
case $(get initrd) in */runs/*) ;; *) fail "--exec did not give a per-run initramfs" ;; esac
boot "" -smp 2
has "antfarm: begin"
has "hello from an added file one"
has "afwork forkexec: created 20 exited-ok 20 exited-bad 0 fork-failed 0"
has "antfarm: end status=0"
fork=$(count fork); exec=$(count exec); exit_=$(count exit)
asc=$(count as_create); asd=$(count as_destroy); sw=$(count switch)
[ "$(count begin)" = 1 ] || fail "begin != 1"
[ "$(count end)" = 1 ] || fail "end != 1"
[ "$(count vfork)" = 0 ] || fail "vfork reported without vfork"
[ "$fork" -ge 22 ] || fail "fork=$fork, want >= 22"
[ "$exec" -ge 22 ] || fail "exec=$exec, want >= 22"
[ "$exit_" -ge 22 ] || fail "exit=$exit_, want >= 22"
[ "$asc" -ge $((fork + exec)) ] || fail "as_create=$asc < fork+exec=$((fork + exec))"
d=$((asc - asd)); [ "${d#-}" -le 5 ] || fail "as_create=$asc and as_destroy=$asd differ by more than 5"
[ "$sw" -ge "$exec" ] || fail "switch=$sw < exec=$exec"
grep -q 'antfarm: error' "$t/console" && fail "an error was reported"

# 2. base initramfs, command from the kernel command line
build --arch x86_64
case $(get initrd) in */runs/*) fail "no --exec/--add but a per-run initramfs" ;; esac
boot 'antfarm.cmd="afwork vforkexec -n 4 -r 100 -t 0.01"'
has "afwork vforkexec: created 4 exited-ok 4 exited-bad 0"
[ "$(count vfork)" = 4 ] || fail "vfork=$(count vfork), want 4"
has "antfarm: end status=0"

# 3. the disk case study's path: virtio modules from the kernel package, a
#    virtio-blk disk, BFQ; and a failing command's status comes out
truncate -s 8M "$t/disk.img"
build --arch x86_64 --exec 'echo bfq >/sys/block/vda/queue/scheduler; cat /sys/block/vda/queue/scheduler
dd if=/dev/vda of=/dev/null bs=1M count=4 2>/dev/null && echo disk-read-ok; exit 3'
boot "antfarm.modules=virtio_pci,virtio_blk,bfq" \
	-drive "file=$t/disk.img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0
has "mq-deadline \[bfq\]"
has "disk-read-ok"
has "antfarm: end status=3"

# 4. antfarm.timeout= kills a command that runs too long
build --arch x86_64
boot 'antfarm.cmd="afwork sleep 300" antfarm.timeout=2'
has "antfarm: end status=137"
echo "guest_boot: ok"
