#!/bin/sh
# tests/guest_channel.test.sh - end-to-end check of the ground-truth channel:
# boots guests under QEMU with guest/tools/truthcount.c (a minimal TCG plugin
# that counts the magic CPUIDs and compares the asid of EXEC/EXIT with CR3)
# and requires the counts QEMU saw to equal the module's own final counts,
# with no CR3 mismatch and no unknown kind.
#   GUEST_ARCHES (default "x86_64 i386 i386-pae") picks the guests;
#   x86_64 runs 2 vCPUs with -cpu max,vendor=GenuineIntel (5-level paging,
#   KPTI on). Skips (77) without QEMU, glib or a reachable Debian mirror.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCHES=${GUEST_ARCHES:-x86_64 i386 i386-pae}
CC=${CC:-cc}
t=$(mktemp -d) || exit 1
trap 'rm -rf "$t"' EXIT
fail() {
	echo "guest_channel: $*"
	[ -f "$t/console" ] && { echo "--- console:"; tail -n 40 "$t/console"; }
	exit 1
}
pkg-config --exists glib-2.0 2>/dev/null || { echo "skip: glib-2.0 development files missing"; exit 77; }
# shellcheck disable=SC2046
"$CC" -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -I"$ROOT/include" \
	$(pkg-config --cflags glib-2.0) -o "$t/truthcount.so" \
	"$ROOT/guest/tools/truthcount.c" || fail "truthcount.c does not build"

WORK='afwork forkexec -n 30 -r 100 -t 0.05; afwork vforkexec -n 10 -r 100 -t 0.01; afwork fork -n 10 -r 100 -t 0.02 -b; afwork pagetouch -m 16 -n 2; afwork lag -k 2 -n 10 -i 0.01 -s 0.1'
for arch in $ARCHES; do
	case $arch in
	x86_64) qemu=qemu-system-x86_64 opts="-smp 2 -cpu max,vendor=GenuineIntel" ;;
	i386 | i386-pae) qemu=qemu-system-i386 opts="" ;;
	*) fail "unknown arch $arch" ;;
	esac
	command -v "$qemu" >/dev/null 2>&1 || { echo "skip: $qemu not installed"; exit 77; }
	if ! "$ROOT/guest/build-guest.sh" --quiet --arch "$arch" --exec "$WORK" >"$t/out" 2>"$t/err"; then
		cat "$t/err"
		if grep -q -e 'cannot reach the Debian mirror' -e 'missing build tools' "$t/err"; then
			echo "skip: $(tail -n 1 "$t/err")"
			exit 77
		fi
		fail "build-guest.sh --arch $arch failed"
	fi
	get() { sed -n "s/^$1=//p" "$t/out"; }
	rm -f "$t/counts"
	# shellcheck disable=SC2086
	timeout 120 "$qemu" -accel tcg -m 512 $opts -nodefaults -display none \
		-serial stdio -no-reboot -kernel "$(get kernel)" -initrd "$(get initrd)" \
		-append "$(get append)" -plugin "$t/truthcount.so,out=$t/counts" \
		</dev/null >"$t/console" 2>&1 || fail "$arch: QEMU failed or timed out ($?)"
	grep -q 'antfarm: end status=0' "$t/console" || fail "$arch: the workload failed"
	[ -f "$t/counts" ] || fail "$arch: the plugin wrote no counts"
	grep -q missing_register "$t/counts" && fail "$arch: $(grep missing_register "$t/counts")"
	truth=$(sed -n 's/.*antfarm: truth //p' "$t/console" | head -n 1)
	[ -n "$truth" ] || fail "$arch: no truth line"
	for k in fork vfork exec exit as_create as_destroy switch begin end; do
		g=$(echo " $truth" | sed -n "s/.* $k=\\([0-9]*\\).*/\\1/p")
		q=$(sed -n "s/^$k //p" "$t/counts")
		[ -n "$g" ] && [ "$g" = "$q" ] || fail "$arch: $k: guest says '$g', QEMU saw '$q'"
	done
	for k in bad_kind exec_cr3_mismatch exit_cr3_mismatch; do
		[ "$(sed -n "s/^$k //p" "$t/counts")" = 0 ] || fail "$arch: $k is not 0: $(cat "$t/counts")"
	done
	[ "$(sed -n 's/^vfork //p' "$t/counts")" = 10 ] || fail "$arch: vfork count is not 10"
	[ "$(sed -n 's/^fork //p' "$t/counts")" -ge 45 ] || fail "$arch: too few forks"
	echo "guest_channel: $arch ok: $(tr '\n' ' ' <"$t/counts")"
done
