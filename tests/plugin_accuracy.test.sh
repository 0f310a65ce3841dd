#!/bin/sh
# tests/plugin_accuracy.test.sh - the QEMU plugin's inference against the
# guest's ground truth, scored the way the paper does (antfarm eval of the
# recorded trace), for each guest kind and for both ways of choosing the
# stores to instrument: learn=off (every candidate store) and the default
# (learned page-table writers, plugin/README.md). Each must give no missed
# process or address-space create or exit, and as many inferred creates as
# the guest created address spaces. The learned run must also find few
# missed page-table stores (verification, summary counter missed_stores).
#
# Guests (each skipped if it cannot be built): x86_64 (qemu64: 4-level,
# no KPTI), x86_64 with -cpu max,vendor=GenuineIntel (5-level, KPTI), i386
# (2-level). Workload: fork+exec, then page touching (fork, touch 8 MB,
# exit). Knobs: AF_ACC_N (fork+exec count, default 60), AF_ACC_KINDS
# (space-separated subset of: x86_64 x86_64-kpti i386 i386-pae; default
# "x86_64 x86_64-kpti i386"), AF_ACC_ARGS (extra plugin arguments for the
# learned run), AF_ACC_SMP (vCPUs, default 1).
# Skips (77) without QEMU 10, the plugin, the antfarm command or a guest.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
PLUGIN=$B/antfarm-qemu.so
N=${AF_ACC_N:-60}
KINDS=${AF_ACC_KINDS:-x86_64 x86_64-kpti i386}
SMP=${AF_ACC_SMP:-1}

skip() { echo "plugin_accuracy: $*"; exit 77; }
fail() { echo "plugin_accuracy: FAIL: $*"; FAILED=1; }
info() { echo "plugin_accuracy: $*"; }

[ -f "$PLUGIN" ] || skip "no $PLUGIN (the plugin needs libglib2.0-dev)"
[ -x "$B/antfarm" ] || skip "no $B/antfarm"
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "no qemu-system-x86_64"
ver=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p')
[ "${ver:-0}" -ge 10 ] 2>/dev/null || skip "QEMU is not QEMU 10 or newer"

# A SANITIZE=1 plugin runs in the uninstrumented QEMU with the sanitizer
# runtimes preloaded (as in plugin_smoke.test.sh).
. "$(dirname "$0")/sanitizer.sh"
sanitizer_preload "$PLUGIN"

T=$(mktemp -d /tmp/af-plugin-acc.XXXXXX) || skip "mktemp"
RAM=/dev/shm/af-plugin-acc.$$
trap 'rm -rf "$T" "$RAM"' EXIT INT TERM
FAILED=0
RAN=0
CMD="afwork forkexec -n $N -r 1000 -t 0; afwork pagetouch -m 8 -n 10"

# cv FILE COLUMN: a value from antfarm eval's CSV (header line, one row).
cv() {
	awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i }
		NR == 2 && k { print $k }' "$1"
}

for kind in $KINDS; do
	case $kind in
	x86_64) arch=x86_64 cpu= qemu=qemu-system-x86_64 ;;
	x86_64-kpti) arch=x86_64 cpu=max,vendor=GenuineIntel qemu=qemu-system-x86_64 ;;
	i386) arch=i386 cpu= qemu=qemu-system-i386 ;;
	i386-pae) arch=i386-pae cpu= qemu=qemu-system-i386 ;;
	*) fail "unknown kind $kind"; continue ;;
	esac
	command -v "$qemu" >/dev/null 2>&1 || { info "$kind: no $qemu, skipped"; continue; }
	if ! timeout 900 "$ROOT/guest/build-guest.sh" --quiet --arch "$arch" >"$T/g.kv" 2>"$T/g.err"; then
		info "$kind: no guest ($(tail -n 1 "$T/g.err")), skipped"
		continue
	fi
	KERNEL=$(sed -n 's/^kernel=//p' "$T/g.kv")
	INITRD=$(sed -n 's/^initrd=//p' "$T/g.kv")
	APPEND=$(sed -n 's/^append=//p' "$T/g.kv")
	extra=
	[ "${arch#i386}" != "$arch" ] && extra=framepointer=on
	for mode in off learned; do
		if [ $mode = off ]; then
			pargs="learn=off,verify=0${extra:+,$extra}"
		else
			pargs="${extra:+$extra,}${AF_ACC_ARGS:-}"
			pargs=${pargs%,}
		fi
		tag=$kind-$mode
		rm -f "$RAM"
		LD_PRELOAD=$PRELOAD timeout 900 "$qemu" -M pc -accel tcg ${cpu:+-cpu "$cpu"} -smp "$SMP" -m 512M \
			-nographic -no-reboot -kernel "$KERNEL" -initrd "$INITRD" \
			-append "$APPEND antfarm.cmd=\"$CMD\"" \
			-object memory-backend-file,id=ram0,size=512M,mem-path="$RAM",share=on \
			-machine memory-backend=ram0 \
			-plugin "$PLUGIN,ram=$RAM,trace=$T/$tag.aft,summary=$T/$tag.sum,quiet=on${pargs:+,$pargs}" \
			>"$T/$tag.log" 2>&1
		st=$?
		rm -f "$RAM"
		if [ $st != 0 ] || ! grep -q "antfarm: end status=0" "$T/$tag.log"; then
			fail "$tag: the guest run failed (status $st): $(tr -d '\r' <"$T/$tag.log" | tail -n 3)"
			continue
		fi
		if grep -q "ERROR: AddressSanitizer\|runtime error:" "$T/$tag.log"; then
			fail "$tag: the sanitizers reported an error"
			continue
		fi
		RAN=$((RAN + 1))
		if ! "$B/antfarm" eval "$T/$tag.aft" --format csv >"$T/$tag.csv" 2>"$T/$tag.err"; then
			fail "$tag: antfarm eval failed: $(tail -n 1 "$T/$tag.err")"
			continue
		fi
		fnc=$(cv "$T/$tag.csv" false_negatives_create)
		fnx=$(cv "$T/$tag.csv" false_negatives_exit)
		afnc=$(cv "$T/$tag.csv" as_false_negatives_create)
		afnx=$(cv "$T/$tag.csv" as_false_negatives_exit)
		inf=$(cv "$T/$tag.csv" inferred_create)
		osas=$(cv "$T/$tag.csv" os_as_create)
		sv() { tr ' ' '\n' <"$T/$tag.sum" | sed -n "s/^$1=//p"; }
		info "$tag: missed creates $fnc exits $fnx (address spaces: $afnc, $afnx), inferred creates $inf, guest address-space creates $osas, store callbacks $(sv store_callbacks), missed stores $(sv missed_stores), relearns $(sv relearns)"
		for v in "$fnc" "$fnx" "$afnc" "$afnx"; do
			[ "$v" = 0 ] || { fail "$tag: missed events ($fnc $fnx $afnc $afnx)"; break; }
		done
		[ -n "$inf" ] && [ "$inf" = "$osas" ] ||
			fail "$tag: $inf inferred creates, the guest created $osas address spaces"
		if [ $mode = learned ]; then
			m=$(sv missed_stores)
			[ -n "$m" ] && [ "$m" -lt 16 ] ||
				fail "$tag: verification found ${m:-?} missed page-table stores"
		fi
	done
done
[ $RAN -gt 0 ] || skip "no guest could be run"
[ $FAILED = 0 ] || exit 1
info "ok ($RAN runs)"
exit 0
